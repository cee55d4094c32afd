/** A test cluster in one process: N real storage nodes on loopback, the coordinator fixture, gateways. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '@tw/config';
import { createLogger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';
import { StorageNodeConfigSchema, type RunningStorageNode, type StorageNodeConfig, startStorageNode } from '@tw/storage-node';
import type { Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import { type Gateway, type GatewayComponents, type GatewayOptions, createGateway } from '../src/index.js';
import { CoordinatorFixture } from './coordinator-fixture.js';

const quiet = createLogger({ role: 'storage-node', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

export interface TestNode {
  readonly id: string;
  readonly dir: string;
  node: RunningStorageNode | undefined;
  address: string;
}

export class TestCluster {
  readonly nodes: TestNode[] = [];
  coordinator!: CoordinatorFixture;
  readonly transports: Transport[] = [];
  readonly clients: CoordinatorClient[] = [];
  readonly gateways: Gateway[] = [];

  static async start(count = 6, options: { k?: number; m?: number } = {}): Promise<TestCluster> {
    const c = new TestCluster();
    try {
      for (let i = 0; i < count; i++) {
        const dir = mkdtempSync(join(tmpdir(), `tw-gw-${i}-`));
        const n: TestNode = { id: `sn-${i}`, dir, node: undefined, address: '' };
        c.nodes.push(n);
        await c.startNode(n, 0);
      }
      c.coordinator = await CoordinatorFixture.start(
        c.nodes.map((n) => ({ id: n.id, address: n.address })),
        options,
      );
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  async startNode(n: TestNode, port: number): Promise<void> {
    const config = parseConfig(StorageNodeConfigSchema, {
      nodeId: n.id,
      dataDir: n.dir,
      listen: { port },
      admin: { port: 0 },
      extentSizeBytes: 64 * 1024 * 1024,
      reserveBytes: 0,
      logLevel: 'silent',
      shutdownTimeoutMs: 1000,
      compaction: { intervalMs: 0 },
    }) as StorageNodeConfig;
    n.node = await startStorageNode(config, { logger: quiet });
    n.address = n.node.dataAddress;
  }

  async stopNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    await n.node?.stop();
    n.node = undefined;
  }

  /** Restarts a stopped node on its old port (its data dir is kept). */
  async restartNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    await this.startNode(n, Number(n.address.slice(n.address.lastIndexOf(':') + 1)));
  }

  async gateway(options: Partial<GatewayOptions> = {}, components: Partial<GatewayComponents> = {}): Promise<Gateway> {
    const transport = tcpTransport()({});
    this.transports.push(transport);
    const client = new CoordinatorClient([this.coordinator.address], { attemptsMax: 2, deadlineMs: 5000 });
    this.clients.push(client);
    let seed = 0x2545f491 + this.gateways.length;
    const gw = createGateway(
      { gatewayId: `gw-${this.gateways.length}`, commitWindowMs: 1, fragmentTimeoutMs: 30_000, ...options },
      {
        transport,
        coordinator: client,
        // Seeded: the version writer tag.
        random: () => {
          seed = (seed * 1103515245 + 12345) >>> 0;
          return seed / 2 ** 32;
        },
        ...components,
      },
    );
    this.gateways.push(gw);
    await gw.ready();
    return gw;
  }

  async close(): Promise<void> {
    for (const g of this.gateways.splice(0)) await g.close().catch(() => undefined);
    for (const c of this.clients.splice(0)) c.close();
    for (const t of this.transports.splice(0)) await t.close().catch(() => undefined);
    await this.coordinator?.close().catch(() => undefined);
    for (const n of this.nodes) {
      await n.node?.stop().catch(() => undefined);
      rmSync(n.dir, { recursive: true, force: true });
    }
  }
}

/** Deterministic bytes (xorshift32), seeded. */
export function seededBytes(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  for (; i < size; i++) b[i] = (x = (x * 31 + 7) >>> 0) & 0xff;
  return b;
}

export const key = (s: string): Buffer => Buffer.from(s, 'utf8');
