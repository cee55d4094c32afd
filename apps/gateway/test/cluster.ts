/** An in-process cluster for gateway tests: a real coordinator, six real storage nodes (ec:4+2), and the gateway app. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '@tw/config';
import { CoordinatorConfigSchema, type CoordinatorConfig, type RunningCoordinator, startCoordinator } from '@tw/coordinator';
import { createLogger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';
import { StorageNodeConfigSchema, type RunningStorageNode, type StorageNodeConfig, startStorageNode } from '@tw/storage-node';
import { GatewayConfigSchema, type GatewayConfig, type RunningGateway, startGateway } from '../src/index.js';
import { freePort } from '@tw/testkit';

export const quiet = createLogger({ role: 'test', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

export { freePort };

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Cluster {
  readonly dirs: string[] = [];
  coordinator: RunningCoordinator | undefined;
  coordinatorAddress = '';
  readonly nodes: RunningStorageNode[] = [];
  readonly gateways: RunningGateway[] = [];

  static async start(nodeCount = 6): Promise<Cluster> {
    const c = new Cluster();
    try {
      const port = await freePort();
      c.coordinatorAddress = `127.0.0.1:${port}`;
      const cdir = c.tempDir('coord');
      const cconf = parseConfig(CoordinatorConfigSchema, {
        id: 1,
        dataDir: cdir,
        listen: { port },
        admin: { port: 0 },
        peers: [{ id: 1, address: c.coordinatorAddress }],
        tickMs: 20,
        pgCount: 64,
        redundancy: 'ec:4+2',
        domainLevels: ['host'],
        failureDomain: 'host',
        nodeTimeoutMs: 5000,
        logLevel: 'silent',
      }) as CoordinatorConfig;
      c.coordinator = await startCoordinator(cconf, quiet);
      await Promise.all(
        Array.from({ length: nodeCount }, async (_, i) => {
          const dir = c.tempDir(`sn-${i}`);
          const config = parseConfig(StorageNodeConfigSchema, {
            nodeId: `sn-${i}`,
            dataDir: dir,
            listen: { port: 0 },
            admin: { port: 0 },
            extentSizeBytes: 64 * 1024 * 1024,
            reserveBytes: 0,
            logLevel: 'silent',
            shutdownTimeoutMs: 1000,
            compaction: { intervalMs: 0 },
            coordinators: [c.coordinatorAddress],
            failureDomain: `host-${i}`,
            heartbeatIntervalMs: 200,
          }) as StorageNodeConfig;
          c.nodes.push(await startStorageNode(config, { logger: quiet }));
        }),
      );
      // Wait for every node to be up in a cluster map with a PG map.
      const client = new CoordinatorClient([c.coordinatorAddress], { attemptsMax: 50, backoffMs: 50, backoffMaxMs: 200 });
      let upCount = 0;
      let hasPgMap = false;
      const stop = client.watchClusterMap((m) => {
        upCount = m.nodes.filter((n) => n.state === 'up').length;
        hasPgMap = m.pgMap.length > 0;
      });
      try {
        await until('all storage nodes up with a PG map', () => upCount === nodeCount && hasPgMap);
        // A second namespace for the token tests (the coordinators refuse commits to unknown namespaces).
        await client.call('createNamespace', {
          namespace: { name: 'team-a', quotaBytes: '0', defaultTtlMs: '0', redundancy: '', usedBytes: '0', blockCount: '0' },
          token: '',
          requestId: { clientId: 'gateway-test', seq: '1' },
          adminToken: '',
        });
      } finally {
        stop();
        client.close();
      }
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  tempDir(name: string): string {
    const d = mkdtempSync(join(tmpdir(), `tw-gwapp-${name}-`));
    this.dirs.push(d);
    return d;
  }

  async gateway(overrides: Record<string, unknown> = {}): Promise<RunningGateway> {
    const config = parseConfig(GatewayConfigSchema, {
      coordinators: [this.coordinatorAddress],
      dramTierBytes: 256 * 1024 * 1024,
      http: { port: 0 },
      resp: { port: 0 },
      lmcache: { port: 0 },
      logLevel: 'silent',
      shutdownTimeoutMs: 2000,
      ...overrides,
    }) as GatewayConfig;
    const gw = await startGateway(config, { logger: quiet });
    this.gateways.push(gw);
    await gw.gateway.ready();
    return gw;
  }

  async close(): Promise<void> {
    for (const g of this.gateways.splice(0)) await g.stop().catch(() => undefined);
    await Promise.all(this.nodes.splice(0).map((n) => n.stop().catch(() => undefined)));
    await this.coordinator?.stop().catch(() => undefined);
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
