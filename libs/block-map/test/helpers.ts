import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { expect } from 'vitest';
import {
  type ApplyOutcome,
  type BlockMap,
  type Command,
  type CommandResult,
  type KvStore,
  encodeCommand,
  levelKvStore,
  memoryKvStore,
  openBlockMap,
} from '../src/index.js';

export const enc = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'utf8'));

export interface StoreHandle {
  readonly store: KvStore;
  close(): Promise<void>;
}

export async function levelStore(): Promise<StoreHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'tw-block-map-'));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return {
    store: levelKvStore(db),
    close: async () => {
      try {
        await db.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

export async function memoryStore(): Promise<StoreHandle> {
  return { store: memoryKvStore(), close: () => Promise.resolve() };
}

export const STORES: readonly [string, () => Promise<StoreHandle>][] = [
  ['memory', memoryStore],
  ['level', levelStore],
];

/** Drives a BlockMap with increasing log indexes and per-client sequence numbers. */
export class Driver {
  index = 0;
  nowMs = 1_000_000;
  readonly #seqs = new Map<number, number>();
  constructor(readonly map: BlockMap) {}

  static async open(store: KvStore): Promise<Driver> {
    return new Driver(await openBlockMap(store));
  }

  bytes(command: Command, clientId = 1, seq?: number): Uint8Array {
    const s = seq ?? (this.#seqs.get(clientId) ?? 0) + 1;
    if (clientId !== 0) this.#seqs.set(clientId, Math.max(s, this.#seqs.get(clientId) ?? 0));
    return encodeCommand({ clientId, seq: s, nowMs: this.nowMs, command });
  }

  async applyBytes(bytes: Uint8Array): Promise<ApplyOutcome> {
    return this.map.apply(++this.index, bytes);
  }

  async run(command: Command, clientId = 1): Promise<CommandResult> {
    return (await this.applyBytes(this.bytes(command, clientId))).result;
  }

  /** Runs and expects success. */
  async ok(command: Command, clientId = 1): Promise<Extract<CommandResult, { ok: true }>> {
    const r = await this.run(command, clientId);
    if (!r.ok) expect.fail(`${command.op} failed: ${r.code} ${r.message}`);
    return r as Extract<CommandResult, { ok: true }>;
  }

  async fail(command: Command, code: string, clientId = 1): Promise<void> {
    const r = await this.run(command, clientId);
    expect(r.ok ? 'ok' : r.code).toBe(code);
  }
}

export const NODES = ['sn-0', 'sn-1', 'sn-2', 'sn-3', 'sn-4', 'sn-5'];

/** InitCluster (64 PGs, ec:2+1 at host level), six nodes, namespace `ns` with ec:2+1; all without a session (client 0). */
export async function setupCluster(d: Driver, options: { quotaBytes?: number | null } = {}): Promise<void> {
  await d.ok({ op: 'init-cluster', rules: { pgCount: 64, domainLevels: ['host'], redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host', domainCapMax: 0 } }, 0);
  for (let i = 0; i < NODES.length; i++) {
    await d.ok({ op: 'register-node', id: NODES[i]!, address: `127.0.0.1:${7400 + i}`, domain: `host-${i}`, weight: 1 }, 0);
  }
  await d.ok({
    op: 'create-namespace',
    name: 'ns',
    quotaBytes: options.quotaBytes ?? null,
    defaultTtlMs: 0,
    redundancy: { kind: 'ec', k: 2, m: 1 },
    tokenHash: new Uint8Array(32),
  }, 0);
}

export function block(key: string | Uint8Array, sizeBytes = 100, nodes: readonly string[] = ['sn-0', 'sn-1', 'sn-2']) {
  return { key: typeof key === 'string' ? enc(key) : key, sizeBytes, checksum: 0x1234n + BigInt(sizeBytes), fragmentNodes: nodes };
}
