/**
 * A storage node process registers with a coordinator process, shows up in the cluster map, and
 * is marked down (new epoch) after it is SIGKILLed and falls silent; restarted, it is up again.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, expect, test } from 'vitest';
import { CoordinatorClient } from '@tw/rpc';
import { killAll, removeTempDirs, startApp, startStorageNodeProcess, tempDir } from '../src/index.js';

afterEach(async () => {
  await killAll();
});
afterAll(() => removeTempDirs());

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('register, heartbeat, marked down when killed, up again after restart', async () => {
  const dir = tempDir('registration');
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = join(dir, 'coordinator.json');
  writeFileSync(config, JSON.stringify({ id: 1, dataDir: join(dir, 'c1'), listen: { port }, admin: { port: 0 }, peers: [{ id: 1, address }], tickMs: 20, pgCount: 16, redundancy: 'none', nodeTimeoutMs: 1500 }));
  const coordinator = startApp('coordinator', ['--config', config]);
  await coordinator.waitForLog((l) => l['msg'] === 'coordinator ready');
  const client = new CoordinatorClient([address], { attemptsMax: 50, backoffMs: 50, backoffMaxMs: 200 });
  const states: string[] = [];
  const stop = client.watchClusterMap((m) => {
    const n = m.nodes.find((x) => x.nodeId === 'sn-a');
    if (n) states.push(n.state);
  });
  const until = async (what: string, cond: () => boolean): Promise<void> => {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${what}; states seen: ${states.join(',')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    const snDir = join(dir, 'sn-a');
    const extra = ['--config', writeNodeConfig(dir, address)];
    const node = await startStorageNodeProcess(snDir, extra);
    await until('the node to appear up', () => states.includes('up'));
    await until('readiness', () => node.child.logs.some((l) => l['msg'] === 'registered with the coordinators'));
    node.child.kill('SIGKILL');
    await node.child.exited;
    await until('the node to be marked down', () => states[states.length - 1] === 'down');
    await startStorageNodeProcess(snDir, extra);
    await until('the node to be up again', () => states[states.length - 1] === 'up');
    expect(states.filter((s) => s === 'down').length).toBeGreaterThanOrEqual(1);
  } finally {
    stop();
    client.close();
  }
});

function writeNodeConfig(dir: string, coordinator: string): string {
  const file = join(dir, 'sn-a.json');
  writeFileSync(file, JSON.stringify({ nodeId: 'sn-a', dataDir: join(dir, 'sn-a'), coordinators: [coordinator], heartbeatIntervalMs: 100, failureDomain: 'host-a', extentSizeBytes: 4194304, reserveBytes: 0 }));
  return file;
}
