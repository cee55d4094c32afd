import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { CoordinatorClient } from '@tw/rpc';
import { twctlErrors } from './errors.js';
import { ManagedProcess } from './processes.js';

export interface LocalClusterOptions {
  /** Everything lives here: configs, data, logs (default ./.tw-data). */
  readonly dataDir: string;
  /** Ports: coordinators base+1.., their admin base+11..; storage nodes base+101.., admin base+201..; gateway base+300.. */
  readonly basePort: number;
  readonly coordinators: number;
  readonly storageNodes: number;
  readonly redundancy: string;
  readonly withGateway: boolean;
  readonly print: (line: string) => void;
  /** Bytes of the gateway's DRAM tier (default 32 MiB: small on purpose, so big reads come from the storage nodes). */
  readonly gatewayDramTierBytes?: number;
}

export interface Endpoint {
  readonly name: string;
  readonly what: string;
  readonly address: string;
}

export interface LocalCluster {
  readonly coordinatorAddresses: string[];
  readonly storage: ManagedProcess[];
  readonly coordinators: ManagedProcess[];
  readonly gateway: ManagedProcess | undefined;
  readonly endpoints: Endpoint[];
  readonly gatewayHttp: string | undefined;
  /** host:port of the gateway's native protocol (@tw/client), when a gateway runs. */
  readonly gatewayNative: string | undefined;
  /** SIGKILLed or stopped storage node i comes back on the same folder and ports. */
  restartStorage(i: number): Promise<void>;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolvePromise) => {
    s.once('error', () => resolvePromise(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolvePromise(true)));
  });
}

/**
 * Starts a whole cluster on this machine as child processes on loopback: coordinators (one Raft
 * group), storage nodes that register with them, and a gateway. Ports are fixed from a base so a
 * second start finds the same cluster in the same data folder.
 */
export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const dir = resolve(o.dataDir);
  for (const sub of ['config', 'logs']) mkdirSync(join(dir, sub), { recursive: true });
  const coordPorts = Array.from({ length: o.coordinators }, (_, i) => o.basePort + 1 + i);
  const coordAdmin = Array.from({ length: o.coordinators }, (_, i) => o.basePort + 11 + i);
  const snPorts = Array.from({ length: o.storageNodes }, (_, i) => o.basePort + 101 + i);
  const snAdmin = Array.from({ length: o.storageNodes }, (_, i) => o.basePort + 201 + i);
  const gwPorts = o.withGateway ? [o.basePort + 300, o.basePort + 301, o.basePort + 302, o.basePort + 303] : [];
  for (const p of [...coordPorts, ...coordAdmin, ...snPorts, ...snAdmin, ...gwPorts]) {
    if (!(await portFree(p))) {
      throw twctlErrors.create('TW_LOCAL_PORT_IN_USE', `port ${p} on 127.0.0.1 is in use (is another local cluster running?); stop it or use --base-port`, { details: { port: p } });
    }
  }
  const coordinatorAddresses = coordPorts.map((p) => `127.0.0.1:${p}`);
  const peers = coordPorts.map((p, i) => ({ id: i + 1, address: `127.0.0.1:${p}` }));
  const coordinators: ManagedProcess[] = [];
  const storage: ManagedProcess[] = [];
  const storageArgs: string[][] = [];
  let gateway: ManagedProcess | undefined;
  let gatewayHttp: string | undefined;
  const all = (): ManagedProcess[] => [...(gateway ? [gateway] : []), ...storage, ...coordinators];
  // Where the gateway's DELIVER writes values into files for engines on this host (llama.cpp loads
  // its KV from a file): tmpfs where there is one, named after the data folder and port so two
  // local clusters never share it; removed on stop.
  const deliveryDir = o.withGateway
    ? existsSync('/dev/shm')
      ? join('/dev/shm', `tw-delivery-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}-${gwPorts[3]}`)
      : join(dir, 'delivery')
    : undefined;
  const stop = async (): Promise<void> => {
    // Gateway first (no new writes), then storage nodes, then the coordinators.
    if (gateway) await gateway.stop();
    await Promise.all(storage.map((p) => p.stop()));
    await Promise.all(coordinators.map((p) => p.stop()));
    if (deliveryDir !== undefined) rmSync(deliveryDir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < o.coordinators; i++) {
      const cfg = join(dir, 'config', `coordinator-${i + 1}.json`);
      writeFileSync(
        cfg,
        JSON.stringify(
          {
            id: i + 1,
            dataDir: join(dir, `coordinator-${i + 1}`),
            listen: { host: '127.0.0.1', port: coordPorts[i] },
            admin: { host: '127.0.0.1', port: coordAdmin[i] },
            peers,
            redundancy: o.redundancy,
            pgCount: 256,
            nodeTimeoutMs: 5000,
            purgeGraceMs: 10_000,
          },
          null,
          2,
        ),
      );
      coordinators.push(new ManagedProcess(`coordinator-${i + 1}`, 'coordinator', ['--config', cfg], join(dir, 'logs', `coordinator-${i + 1}.log`)));
    }
    await Promise.all(coordinators.map((c) => c.waitFor((l) => l['msg'] === 'coordinator ready', 90_000)));
    o.print(`  coordinators up: ${coordinatorAddresses.join(', ')}`);
    for (let i = 0; i < o.storageNodes; i++) {
      const cfg = join(dir, 'config', `storage-${i + 1}.json`);
      writeFileSync(
        cfg,
        JSON.stringify(
          {
            nodeId: `sn-${i + 1}`,
            dataDir: join(dir, `storage-${i + 1}`),
            listen: { host: '127.0.0.1', port: snPorts[i] },
            admin: { host: '127.0.0.1', port: snAdmin[i] },
            coordinators: coordinatorAddresses,
            failureDomain: `host-${i + 1}`,
            extentSizeBytes: 256 * 1024 * 1024,
            reserveBytes: 512 * 1024 * 1024,
            heartbeatIntervalMs: 1000,
          },
          null,
          2,
        ),
      );
      storageArgs.push(['--config', cfg]);
      storage.push(new ManagedProcess(`storage-${i + 1}`, 'storage-node', ['--config', cfg], join(dir, 'logs', `storage-${i + 1}.log`)));
    }
    await Promise.all(storage.map((s) => s.waitFor((l) => l['msg'] === 'registered with the coordinators', 90_000)));
    o.print(`  storage nodes up and registered: ${snPorts.map((p) => `127.0.0.1:${p}`).join(', ')}`);
    // Wait until the cluster map shows every node up and a PG map exists.
    const client = new CoordinatorClient(coordinatorAddresses, { attemptsMax: 30, backoffMs: 50, backoffMaxMs: 500 });
    try {
      await new Promise<void>((resolvePromise, reject) => {
        const timer = setTimeout(() => {
          stopWatch();
          reject(twctlErrors.create('TW_LOCAL_START_FAILED', 'the cluster map never showed every storage node up'));
        }, 60_000);
        const stopWatch = client.watchClusterMap((m) => {
          const up = m.nodes.filter((n) => n.state === 'up').length;
          if (up >= o.storageNodes && m.pgMap.length > 0) {
            clearTimeout(timer);
            stopWatch();
            resolvePromise();
          }
        });
      });
    } finally {
      client.close();
    }
    if (o.withGateway) {
      const cfg = join(dir, 'config', 'gateway.json');
      writeFileSync(
        cfg,
        JSON.stringify(
          {
            gatewayId: 'gateway-1',
            coordinators: coordinatorAddresses,
            // Small on purpose: the demo's reads then come from the storage nodes, not from DRAM.
            dramTierBytes: o.gatewayDramTierBytes ?? 32 * 1024 * 1024,
            http: { host: '127.0.0.1', port: gwPorts[0] },
            resp: { host: '127.0.0.1', port: gwPorts[1] },
            lmcache: { host: '127.0.0.1', port: gwPorts[2] },
            native: { host: '127.0.0.1', port: gwPorts[3], deliveryDir },
          },
          null,
          2,
        ),
      );
      gateway = new ManagedProcess('gateway', 'gateway', ['--config', cfg], join(dir, 'logs', 'gateway.log'));
      await gateway.waitFor((l) => l['msg'] === 'gateway started', 90_000);
      gatewayHttp = `http://127.0.0.1:${gwPorts[0]}`;
      const t0 = Date.now();
      for (;;) {
        const ok = await fetch(`${gatewayHttp}/readyz`).then((r) => r.ok, () => false);
        if (ok) break;
        if (Date.now() - t0 > 60_000) throw twctlErrors.create('TW_LOCAL_START_FAILED', 'the gateway never became ready (no cluster map)');
        await new Promise((r) => setTimeout(r, 200));
      }
      o.print(`  gateway up: HTTP ${gatewayHttp}, RESP redis://127.0.0.1:${gwPorts[1]}, LMCache lm://127.0.0.1:${gwPorts[2]}, native (@tw/client) 127.0.0.1:${gwPorts[3]}`);
    }
  } catch (err) {
    for (const p of all()) {
      if (p.exitCode !== undefined || (err as Error).message.includes(p.name)) o.print(`--- last lines of ${p.name}:\n${p.lastLines()}`);
    }
    await stop();
    throw twctlErrors.create('TW_LOCAL_START_FAILED', `local cluster failed to start: ${(err as Error).message} (logs in ${join(dir, 'logs')})`, { cause: err });
  }
  const endpoints: Endpoint[] = [
    ...(gatewayHttp === undefined
      ? []
      : [
          { name: 'gateway', what: 'HTTP API, /metrics', address: gatewayHttp },
          { name: 'gateway', what: 'RESP (redis-cli)', address: `redis://127.0.0.1:${gwPorts[1]}` },
          { name: 'gateway', what: 'LMCache lm://', address: `lm://127.0.0.1:${gwPorts[2]}` },
          { name: 'gateway', what: 'native (@tw/client)', address: `127.0.0.1:${gwPorts[3]}` },
        ]),
    ...coordinators.map((_c, i) => ({ name: `coordinator-${i + 1}`, what: 'gRPC / admin', address: `${coordinatorAddresses[i]}  http://127.0.0.1:${coordAdmin[i]}/metrics` })),
    ...storage.map((_s, i) => ({ name: `storage-${i + 1}`, what: 'fragments / admin', address: `127.0.0.1:${snPorts[i]}  http://127.0.0.1:${snAdmin[i]}/metrics` })),
  ];
  const restartStorage = async (i: number): Promise<void> => {
    const old = storage[i]!;
    await old.stop();
    const p = new ManagedProcess(old.name, 'storage-node', storageArgs[i]!, join(dir, 'logs', `${old.name}.log`));
    storage[i] = p;
    await p.waitFor((l) => l['msg'] === 'registered with the coordinators', 90_000);
  };
  const gatewayNative = o.withGateway ? `127.0.0.1:${gwPorts[3]}` : undefined;
  return { coordinatorAddresses, storage, coordinators, gateway, endpoints, gatewayHttp, gatewayNative, restartStorage, stop };
}
