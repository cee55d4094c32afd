/** tw-storage-node as a process: --help, bad configs, the data-folder lock, SIGTERM. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { FragmentClient } from '@tw/fragment-protocol';
import { tcpTransport } from '@tw/transport-tcp';
import { fillBytes, killAll, makeFragment, removeTempDirs, startApp, startStorageNodeProcess, tempDir } from '../src/index.js';

afterEach(async () => {
  await killAll();
});
afterAll(() => removeTempDirs());

describe('tw-storage-node', () => {
  test('--help prints usage and exits 0', async () => {
    const c = startApp('storage-node', ['--help']);
    expect(await c.exited).toBe(0);
    expect(c.logs).toEqual([]);
  });

  test('a bad config names the field and exits 2', async () => {
    const dir = tempDir('badcfg');
    const file = join(dir, 'node.json');
    writeFileSync(file, JSON.stringify({ dataDir: dir, listen: { port: 'seventy' }, fsync: { mode: 'sometimes' } }));
    const c = startApp('storage-node', ['--config', file]);
    expect(await c.exited).toBe(2);
    const err = c.text.join('\n');
    expect(err).toContain('TW_CONFIG_INVALID');
    expect(err).toContain('listen.port');
    expect(err).toContain('fsync.mode: must be one of "always", "group", "never"');
  });

  test('unknown flags and missing config are usage errors', async () => {
    const a = startApp('storage-node', ['--nope']);
    expect(await a.exited).toBe(2);
    expect(a.text.join('\n')).toContain('TW_CLI_USAGE');
    const b = startApp('storage-node', []);
    expect(await b.exited).toBe(2);
  });

  test('a second process on the same data folder is refused', async () => {
    const dir = tempDir('lock');
    const first = await startStorageNodeProcess(dir);
    const second = startApp('storage-node', ['--data-dir', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    expect(await second.exited).toBe(1);
    expect(second.text.join('\n')).toMatch(/TW_EXTENT_LOCKED|lock/i);
    // The first one is unharmed.
    expect((await fetch(`${first.adminUrl}/healthz`)).status).toBe(200);
  });

  test('SIGTERM finishes in-flight requests, exits 0, and every acknowledged put survives', async () => {
    const dir = tempDir('sigterm');
    const node = await startStorageNodeProcess(dir);
    const transport = tcpTransport()({});
    const acked: number[] = [];
    const failures: string[] = [];
    try {
      const client = new FragmentClient(await transport.dial(node.dataAddress));
      const frags = Array.from({ length: 40 }, (_, i) => makeFragment('term', `k${i}`, 1n, fillBytes(Buffer.allocUnsafe(512 * 1024), i)));
      const puts = frags.map((f, i) =>
        client.put(f.id, f.header, f.bytes).then(
          () => acked.push(i),
          (err: { code?: string }) => failures.push(err.code ?? 'no code'),
        ),
      );
      // Terminate while the puts stream in.
      setTimeout(() => node.child.kill('SIGTERM'), 20);
      await Promise.all(puts);
      expect(await node.child.exited).toBe(0);
      expect(node.child.logs.some((l) => l['msg'] === 'stopped')).toBe(true);
      // A put the node did not take fails with a transport code, never silently.
      for (const code of failures) expect(code).toMatch(/^TW_TRANSPORT_/);
      const again = await startStorageNodeProcess(dir);
      const c2 = new FragmentClient(await transport.dial(again.dataAddress));
      for (const i of acked) expect((await c2.get(frags[i]!.id))?.bytes.equals(frags[i]!.bytes)).toBe(true);
      again.child.kill('SIGTERM');
      expect(await again.child.exited).toBe(0);
    } finally {
      await transport.close();
    }
  });
});
