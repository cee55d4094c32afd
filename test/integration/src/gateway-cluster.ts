/**
 * The gateway with its cluster as child processes on loopback: one coordinator, N storage nodes
 * (ec:4+2 needs 6), one tw-gateway with HTTP, RESP and lm:// front-ends on free ports.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type Child, startApp, tempDir } from './processes.js';
import { type StorageNodeProcess, startStorageNodeProcess } from './storage-node.js';

export async function freeLoopbackPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface GatewayClusterProcesses {
  readonly dir: string;
  readonly coordinator: Child;
  readonly coordinatorAddress: string;
  readonly nodes: StorageNodeProcess[];
  readonly gateway: Child;
  readonly httpUrl: string;
  readonly respAddress: string;
  readonly lmcacheAddress: string;
}

/** Starts everything and waits until the gateway is ready (/readyz 200). Call killAll() afterwards. */
export async function startGatewayCluster(options: { nodes?: number; gatewayConfig?: Record<string, unknown> } = {}): Promise<GatewayClusterProcesses> {
  const dir = tempDir('gateway-cluster');
  const port = await freeLoopbackPort();
  const coordinatorAddress = `127.0.0.1:${port}`;
  const cfile = join(dir, 'coordinator.json');
  writeFileSync(
    cfile,
    JSON.stringify({ id: 1, dataDir: join(dir, 'c1'), listen: { port }, admin: { port: 0 }, peers: [{ id: 1, address: coordinatorAddress }], tickMs: 20, pgCount: 64, redundancy: 'ec:4+2', domainLevels: ['host'], failureDomain: 'host', nodeTimeoutMs: 3000 }),
  );
  const coordinator = startApp('coordinator', ['--config', cfile]);
  await coordinator.waitForLog((l) => l['msg'] === 'coordinator ready', 60_000);
  const count = options.nodes ?? 6;
  const nodes = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const f = join(dir, `sn-${i}.json`);
      writeFileSync(f, JSON.stringify({ nodeId: `sn-${i}`, dataDir: join(dir, `sn-${i}`), coordinators: [coordinatorAddress], heartbeatIntervalMs: 200, failureDomain: `host-${i}`, extentSizeBytes: 16 * 1024 * 1024, reserveBytes: 0 }));
      return startStorageNodeProcess(join(dir, `sn-${i}`), ['--config', f]);
    }),
  );
  const gfile = join(dir, 'gateway.json');
  writeFileSync(
    gfile,
    JSON.stringify({ coordinators: [coordinatorAddress], dramTierBytes: 128 * 1024 * 1024, http: { port: 0 }, resp: { port: 0 }, lmcache: { port: 0 }, shutdownTimeoutMs: 2000, ...options.gatewayConfig }),
  );
  const gateway = startApp('gateway', ['--config', gfile]);
  const started = await gateway.waitForLog((l) => l['msg'] === 'gateway started', 60_000);
  const httpUrl = String(started['http']);
  const t0 = Date.now();
  for (;;) {
    const r = await fetch(`${httpUrl}/readyz`).catch(() => undefined);
    if (r?.status === 200) break;
    if (Date.now() - t0 > 60_000) throw new Error('gateway not ready after 60 s');
    await new Promise((res) => setTimeout(res, 100));
  }
  return { dir, coordinator, coordinatorAddress, nodes, gateway, httpUrl, respAddress: String(started['resp']), lmcacheAddress: String(started['lmcache']) };
}
