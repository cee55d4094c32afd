/**
 * The coordinator's replicated state machine in the simulator: the REAL @tw/block-map BlockMap
 * over a memory KvStore (its promises settle at once, so runs replay exactly), driven with the
 * exact command bytes a coordinator proposes (`encodeCommand`, client request ids (clientId, seq)
 * that the block map de-duplicates on retry).
 *
 * Restarts, two modes (chosen per seed by the test config):
 * - volatile: the crashed node's block map is gone; the node builds a fresh one from raft's durable
 *   snapshot (the block map's snapshot chunks, restored with `restoreFromChunks`) and raft replays
 *   the durable log above it. Exercises snapshot streaming and replay through the session table.
 * - durable: the block map's store survives the crash (a SIGKILL of a coordinator on classic-level:
 *   every completed write batch is kept; the block map writes one atomic batch per apply, with its
 *   applied index). The node reopens it (`openBlockMap`) and tells raft it applied up to the block
 *   map's applied index, as the coordinator does. Exercises reopen and applied > durable commit.
 *
 * Lookups (`lookupPrefix`) are served by ReadIndex from the local block map, or go through the log
 * as a sim-only read entry (tagged 0x52, never given to the block map), per the simulator's
 * readIndexReads setting.
 */
import { isTwError } from '@tw/errors';
import {
  type ApplyOutcome,
  type BlockMap,
  type Command,
  type CommandResult,
  type KvIterator,
  type KvOp,
  type KvRange,
  type KvStore,
  encodeCommand,
  memoryKvStore,
  openBlockMap,
} from '@tw/block-map';
import { requestKey, type ApplyResult, type Prng, type SimService, type SimStateMachine } from '../../src/index.js';
import { blockMapModel, type BmKeyState, type BmRequest, type BmResponse } from './block-map-model.js';

export const NAMESPACE = 'sim';
export const STORAGE_NODES = ['sn-0', 'sn-1', 'sn-2', 'sn-3'];
const READ_TAG = 0x52;
const SETUP_OPS = new Set<string>(['init-cluster', 'register-node', 'create-namespace']);
const NOW_BASE_MS = 1_800_000_000_000;
const SNAPSHOT_CHUNK_BYTES = 4096;

const enc = new TextEncoder();
const dec = new TextDecoder();
const keyBytes = (k: string): Uint8Array => enc.encode(k);

/** The administrator's setup: InitCluster, the storage nodes, the namespace the clients use. */
export const SETUP: readonly Command[] = [
  { op: 'init-cluster', rules: { pgCount: 16, domainLevels: ['host'], redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host', domainCapMax: 0 } },
  ...STORAGE_NODES.map((id, i): Command => ({ op: 'register-node', id, address: `127.0.0.1:${7400 + i}`, domain: `host-${i}`, weight: 1 })),
  { op: 'create-namespace', name: NAMESPACE, quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'ec', k: 2, m: 1 }, tokenHash: new Uint8Array(32) },
];

export interface BlockMapServiceOptions {
  /** The block map's store survives crashes (see the file comment). */
  readonly durable: boolean;
  /** Distinct keys (fewer: more contention). */
  readonly keys?: number;
  /** Largest batch of a commit, delete or lookup. */
  readonly batchMax?: number;
  readonly lookupShare?: number;
  readonly deleteShare?: number;
  /**
   * TESTING THE TESTS ONLY: a coordinator that gives every attempt of a request a fresh request id,
   * so the block map cannot recognise retries and applies them again.
   */
  readonly plantedNoDedup?: boolean;
  /**
   * TESTING THE TESTS ONLY (durable mode): a store that is not atomic. A crash loses the effects
   * of the block map's last apply batch but keeps its applied-index record (the batch's last op),
   * so the reopened replica silently lacks one command: its state diverges from the others.
   */
  readonly plantedTornApply?: boolean;
}

/**
 * A KvStore that can undo its last write batch except for the batch's last op (plantedTornApply).
 * Reads and writes pass through; each write first captures the old values of its keys.
 */
class TearableStore implements KvStore {
  private undo: KvOp[] = [];
  constructor(private readonly inner: KvStore) {}
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.inner.get(key);
  }
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.inner.getMany(keys);
  }
  async write(ops: readonly KvOp[]): Promise<void> {
    const torn = ops.slice(0, -1);
    const old = await this.inner.getMany(torn.map((op) => op.key));
    await this.inner.write(ops);
    // Undo in reverse order, so that a key written twice in the batch gets its first old value.
    this.undo = torn.map((op, i): KvOp => (old[i] === undefined ? { type: 'del', key: op.key } : { type: 'put', key: op.key, value: old[i]! })).reverse();
  }
  iterator(range?: KvRange): KvIterator {
    return this.inner.iterator(range);
  }
  clear(range?: KvRange): Promise<void> {
    this.undo = [];
    return this.inner.clear(range);
  }
  /** The crash: the last batch's effects vanish, its last op (the applied index) stays. Returns whether anything was torn. */
  async tear(): Promise<boolean> {
    const undo = this.undo;
    this.undo = [];
    if (undo.length === 0) return false;
    await this.inner.write(undo);
    return true;
  }
}

/** The block map command of a client request (lookups are not block map commands). */
export function commandOf(req: BmRequest): Command {
  switch (req.op) {
    case 'commit':
      return {
        op: 'commit-blocks',
        namespace: NAMESPACE,
        blocks: req.blocks.map((b) => {
          const v = Number(b.value);
          return {
            key: keyBytes(b.key),
            sizeBytes: 100 + (v % 1000),
            checksum: BigInt(b.value),
            fragmentNodes: [0, 1, 2].map((j) => STORAGE_NODES[(v + j) % STORAGE_NODES.length]!),
          };
        }),
      };
    case 'delete':
      return { op: 'delete-blocks', namespace: NAMESPACE, keys: req.keys.map(keyBytes) };
    case 'setup':
      return SETUP[req.step]!;
    case 'lookup':
      throw new Error('a lookup is not a block map command');
  }
}

function response(outcome: ApplyOutcome): BmResponse {
  return responseOf(outcome.result);
}

function responseOf(r: CommandResult): BmResponse {
  if (!r.ok) return { op: 'error', code: r.code, message: r.message };
  switch (r.op) {
    case 'commit-blocks':
      return { op: 'commit', versions: r.versions };
    case 'delete-blocks':
      return { op: 'delete', deleted: r.deleted, missing: r.missing };
    default:
      return { op: 'setup' };
  }
}

/** Length-prefixed concatenation of the block map's snapshot chunks (raft's snapshot data). */
async function packChunks(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const c of chunks) {
    parts.push(c);
    size += 4 + c.byteLength;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const c of parts) {
    view.setUint32(at, c.byteLength, false);
    out.set(c, at + 4);
    at += 4 + c.byteLength;
  }
  return out;
}

async function* unpackChunks(data: Uint8Array): AsyncGenerator<Uint8Array> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at < data.byteLength; ) {
    const n = view.getUint32(at, false);
    yield data.subarray(at + 4, at + 4 + n);
    at += 4 + n;
  }
}

/** What a run exercised (for the tests' coverage checks). */
export interface BlockMapCounters {
  snapshotsTaken: number;
  snapshotsRestored: number;
  reopened: number;
  /**
   * Durable restarts where the reopened block map was behind raft's durable snapshot (its last
   * entries before the snapshot were no block map commands: a new leader's empty entry, a
   * log read), so the node restored the snapshot instead. A node that refuses to start when the
   * state machine is behind the snapshot (and whose snapshots carry no state) would not restart.
   */
  reopenedBehindSnapshot: number;
  /** Applies of a retried request that the block map answered from its session table. */
  duplicates: number;
  /** Error results of workload requests (a correct run has none; the clients may never see them). */
  readonly errors: Map<string, number>;
  /** plantedTornApply: crashes that tore an apply batch. */
  torn: number;
  /** plantedNoDedup: the client request behind each fresh request id. */
  readonly aliases: Map<number, { clientId: number; seq: number }>;
}

export class BlockMapMachine implements SimStateMachine<BmRequest, BmResponse> {
  /** Reopened from a crashed node's store and not yet used. */
  private reopened: boolean;

  constructor(
    readonly store: KvStore,
    readonly map: BlockMap,
    private readonly durable: boolean,
    private readonly counters: BlockMapCounters,
  ) {
    this.reopened = durable && map.appliedIndex > 0;
  }

  async apply(data: Uint8Array, index: number): Promise<ApplyResult<BmResponse> | undefined> {
    this.reopened = false;
    if (data[0] === READ_TAG) {
      const r = JSON.parse(dec.decode(data.subarray(1))) as { c: number; s: number; keys: string[] };
      return { requestKey: requestKey(r.c, r.s), result: await this.lookup(r.keys) };
    }
    const outcome = await this.map.apply(index, data);
    if (outcome.clientId === 0) return undefined;
    if (outcome.duplicate) this.counters.duplicates++;
    if (!outcome.result.ok && outcome.op !== null && !SETUP_OPS.has(outcome.op)) {
      this.counters.errors.set(outcome.result.code, (this.counters.errors.get(outcome.result.code) ?? 0) + 1);
    }
    const alias = this.counters.aliases.get(outcome.clientId);
    if (alias !== undefined) return { requestKey: requestKey(alias.clientId, alias.seq), result: response(outcome) };
    return { requestKey: requestKey(outcome.clientId, outcome.seq), result: response(outcome) };
  }

  async read(req: BmRequest): Promise<BmResponse | undefined> {
    return req.op === 'lookup' ? this.lookup(req.keys) : undefined;
  }

  private async lookup(keys: readonly string[]): Promise<BmResponse> {
    try {
      const r = await this.map.lookupPrefix(NAMESPACE, keys.map(keyBytes));
      return { op: 'lookup', count: r.count, values: r.records.map((x) => x.checksum.toString()), versions: r.records.map((x) => x.version) };
    } catch (err) {
      if (isTwError(err)) return { op: 'error', code: err.code, message: err.message };
      throw err;
    }
  }

  async snapshot(): Promise<Uint8Array> {
    this.counters.snapshotsTaken++;
    return packChunks(this.map.snapshotChunks(SNAPSHOT_CHUNK_BYTES));
  }

  async restore(data: Uint8Array): Promise<void> {
    this.counters.snapshotsRestored++;
    if (this.reopened) this.counters.reopenedBehindSnapshot++;
    this.reopened = false;
    await this.map.restoreFromChunks(unpackChunks(data));
  }

  async digest(): Promise<string> {
    return (await this.map.stateDigest()).toString(16);
  }

  durableIndex(): number {
    return this.durable ? this.map.appliedIndex : 0;
  }
}

export type BlockMapService = SimService<BmRequest, BmResponse, BmKeyState> & { readonly counters: BlockMapCounters };

export function blockMapService(options: BlockMapServiceOptions): BlockMapService {
  const counters: BlockMapCounters = { snapshotsTaken: 0, snapshotsRestored: 0, reopened: 0, reopenedBehindSnapshot: 0, duplicates: 0, errors: new Map(), torn: 0, aliases: new Map() };
  const keys = options.keys ?? 4;
  const batchMax = Math.max(1, Math.min(options.batchMax ?? 3, keys));
  const lookupShare = options.lookupShare ?? 0.4;
  const deleteShare = options.deleteShare ?? 0.15;
  let nextValue = 1;
  const pickKeys = (rng: Prng): string[] => {
    const n = rng.chance(0.6) ? 1 : rng.between(2, batchMax);
    const all = Array.from({ length: keys }, (_, i) => `k${i}`);
    const out: string[] = [];
    while (out.length < n) out.push(all.splice(rng.int(all.length), 1)[0]!);
    return out;
  };
  return {
    name: `block-map(${options.durable ? 'durable' : 'volatile'})`,
    async newStateMachine(crashed) {
      if (options.durable && crashed instanceof BlockMapMachine) {
        // The store survived; the block map's in-memory caches did not: reopen it.
        counters.reopened++;
        if (crashed.store instanceof TearableStore && (await crashed.store.tear())) counters.torn++;
        return new BlockMapMachine(crashed.store, await openBlockMap(crashed.store), true, counters);
      }
      const store = options.plantedTornApply === true ? new TearableStore(memoryKvStore()) : memoryKvStore();
      return new BlockMapMachine(store, await openBlockMap(store), options.durable, counters);
    },
    encode(clientId, seq, req) {
      if (req.op === 'lookup') {
        const body = enc.encode(JSON.stringify({ c: clientId, s: seq, keys: req.keys }));
        const out = new Uint8Array(1 + body.byteLength);
        out[0] = READ_TAG;
        out.set(body, 1);
        return out;
      }
      if (options.plantedNoDedup === true && req.op !== 'setup') {
        const alias = 1000 + counters.aliases.size;
        counters.aliases.set(alias, { clientId, seq });
        return encodeCommand({ clientId: alias, seq: 1, nowMs: NOW_BASE_MS + seq, command: commandOf(req) });
      }
      return encodeCommand({ clientId, seq, nowMs: NOW_BASE_MS + seq, command: commandOf(req) });
    },
    isRead: (req) => req.op === 'lookup',
    nextRequest(rng) {
      const r = rng.float();
      if (r < lookupShare) return { op: 'lookup', keys: pickKeys(rng) };
      if (r < lookupShare + deleteShare) return { op: 'delete', keys: pickKeys(rng) };
      return { op: 'commit', blocks: pickKeys(rng).map((key) => ({ key, value: String(nextValue++) })) };
    },
    setup: SETUP.map((_, step): BmRequest => ({ op: 'setup', step })),
    model: blockMapModel,
    counters,
  };
}
