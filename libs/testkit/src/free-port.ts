import { createServer } from 'node:net';

/**
 * A loopback port that was free a moment ago, for a test server to listen on. Drawn from
 * 10000-19999: below Linux's ephemeral range (32768-60999), where an outgoing connection of a
 * concurrent test can take a port between this check and the server's listen (a CI run failed
 * that way with EADDRINUSE when ports were picked by binding port 0).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    const s = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((resolve) => s.close(resolve));
      return port;
    }
  }
  throw new Error('no free port in 10000-19999 after 100 tries');
}
