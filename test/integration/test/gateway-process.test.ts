/**
 * tw-gateway as a process in front of a coordinator and six storage node processes: HTTP, RESP
 * and lm:// round trips, a degraded read after a storage node is SIGKILLed, and a clean SIGTERM.
 */
import { connect } from 'node:net';
import { afterAll, afterEach, expect, test } from 'vitest';
import { startGatewayCluster } from '../src/gateway-cluster.js';
import { killAll, removeTempDirs } from '../src/processes.js';

afterEach(async () => {
  await killAll();
});
afterAll(() => removeTempDirs());

async function talk(address: string, send: Buffer, replyBytes: number): Promise<Buffer> {
  const i = address.lastIndexOf(':');
  const s = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
  try {
    const chunks: Buffer[] = [];
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out: ${Buffer.concat(chunks).toString('latin1')}`)), 20_000);
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= replyBytes) {
          clearTimeout(t);
          resolve();
        }
      });
      s.on('error', reject);
      s.write(send);
    });
    return Buffer.concat(chunks);
  } finally {
    s.destroy();
  }
}

test('HTTP, RESP and lm:// through the gateway process; degraded read; SIGTERM', async () => {
  const c = await startGatewayCluster();
  const value = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < value.length; i++) value[i] = (i * 17 + 3) & 0xff;
  const url = `${c.httpUrl}/v1/namespaces/default/blocks/proc-key`;
  expect((await fetch(`${url}?mode=sync`, { method: 'PUT', body: value })).status).toBe(201);
  expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(value)).toBe(true);

  expect((await talk(c.respAddress, Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nr\r\n$2\r\nhi\r\n*2\r\n$3\r\nGET\r\n$1\r\nr\r\n'), 13)).toString()).toBe('+OK\r\n$2\r\nhi\r\n');

  const health = Buffer.alloc(186);
  health.writeInt32LE(5, 0);
  health.write('h'.padEnd(150, ' '), 36);
  expect((await talk(c.lmcacheAddress, health, 36)).readInt32LE(0)).toBe(200);

  // One storage node gone: the committed block still reads back (from the DRAM tier or degraded).
  c.nodes[0]!.child.kill('SIGKILL');
  await c.nodes[0]!.child.exited;
  const other = await fetch(url);
  expect(other.status).toBe(200);
  expect(Buffer.from(await other.arrayBuffer()).equals(value)).toBe(true);

  c.gateway.kill('SIGTERM');
  expect(await c.gateway.exited).toBe(0);
}, 170_000);
