/**
 * The coordinators' replicated state machine: namespaces, block records, the cluster map and the
 * PG map, kept in a {@link KvStore} (keys.ts gives the layout) so that a coordinator holds block
 * maps far larger than its memory. In memory it caches only what is bounded: namespaces
 * (NAMESPACES_MAX), nodes (placement's NODES_MAX), the PG map, client sessions
 * (CLIENT_SESSIONS_MAX). Block records are always read from the store.
 *
 * Apply contract:
 * - `apply(index, bytes)` is deterministic: its effect and result depend only on the state and the
 *   bytes (time comes in the command as the proposer's `nowMs`). Bad client input never throws: it
 *   yields a coded error result, the same on every replica. Only a failing store throws, after
 *   which this instance refuses further work (reopen it from the store).
 * - Each apply is ONE atomic store batch, which also records the applied index: after a crash the
 *   state is that of some applied index, and Raft re-applies the entries after it.
 * - Calls are serialised internally (a second apply waits for the first); queries may run at any
 *   time and see the state between two applies.
 * - Idempotency: a command with clientId != 0 is remembered by (clientId, seq); a retry returns
 *   the first result (`duplicate: true`) without applying again. Each client keeps its last
 *   DEDUP_RESULTS_PER_CLIENT_MAX results; an older retry gets TW_BLOCKMAP_REQUEST_EXPIRED.
 */
import {
  type KvLayout,
  type Redundancy,
  checksum64Parts,
  fragmentCount,
  validateKvLayout,
  validateNamespace,
  validateRedundancy,
  KEY_MAX_BYTES,
} from '@tw/block-format';
import { AssertionFailure, assert, isTwError } from '@tw/errors';
import { type ClusterMap, type PgMap, buildPgMap, normalizeRules, rebuildPgMap, validateClusterMap } from '@tw/placement';
import { DecodeError, Reader, Writer, compareBytes } from './bytes.js';
import { type BlockCommit, type Command, type CommandEnvelope, type CommandOp, decodeCommand, decodeHeader } from './commands.js';
import { blockMapErrors } from './errors.js';
import {
  META_APPLIED,
  META_CLUSTER,
  META_NEXT_VERSION,
  META_PG_MAP,
  META_RESTORING,
  TAG_END,
  TAG_NAMESPACE,
  TAG_NODE,
  TAG_PURGE,
  TAG_SESSION,
  blockKey,
  blockPrefix,
  decodePurgeKey,
  garbageKey,
  getU64BE,
  namespaceKey,
  nodeKey,
  purgeKey,
  purgeKeyBound,
  resultKey,
  resultPrefix,
  sessionKey,
  tagKey,
  userKeyOf,
} from './keys.js';
import { type KvOp, type KvStore, kvEntries, prefixRange } from './kv-store.js';
import type { FragmentCheckResult, FragmentLiveness, FragmentRef } from './fragment-liveness.js';
import { FRAGMENT_CHECK_GARBAGE_SCAN_MAX, FRAGMENT_CHECK_MAX } from './limits.js';
import {
  BATCH_RECORDS_MAX,
  BLOCK_SIZE_MAX_BYTES,
  CLIENT_SESSIONS_MAX,
  COMMAND_MAX_BYTES,
  DEDUP_RESULTS_PER_CLIENT_MAX,
  LIST_LIMIT_MAX,
  LOOKUP_KEYS_MAX,
  LOOKUP_SCRATCH_MAX_BYTES,
  NAMESPACES_MAX,
  NODE_ADDRESS_MAX_BYTES,
  QUOTA_MAX_BYTES,
  SNAPSHOT_CHUNK_MAX_BYTES,
  SNAPSHOT_CHUNK_MIN_BYTES,
  TOKEN_HASH_MAX_BYTES,
  TOUCH_GRANULARITY_MS,
  TTL_MAX_MS,
} from './limits.js';
import {
  type ClusterMeta,
  decodeBlock,
  decodeClusterMeta,
  decodeNamespace,
  decodeNode,
  decodePgMap,
  encodeBlock,
  encodeClusterMeta,
  encodeNamespace,
  encodeNode,
  encodePgMap,
  placementRulesOf,
  storedBlockLive,
  storedBlockTailAt,
} from './records.js';
import { type CommandError, type CommandResult, type PurgedBlock, decodeResult, encodeResult, errorResult } from './results.js';
import { type SnapshotStream, decodeChunk, encodeChunk } from './snapshot-chunks.js';
import type { BlockRecord, BlockRef, ClusterMapView, ClusterRules, NamespaceInfo, NodeRecord, RetiredBlock } from './types.js';

/** The stored records of a lookup (lookupPrefixStored). */
export interface StoredLookup {
  /** Leading keys committed. */
  readonly count: number;
  /** Their stored record bytes, one after another. */
  readonly bytes: Uint8Array;
  /** count + 1 offsets into `bytes`: record i spans offsets[i]..offsets[i + 1]. */
  readonly offsets: readonly number[];
}

/** What one apply produced. */
export interface ApplyOutcome {
  readonly index: number;
  /** 0 when the command carried no session (or its header did not decode). */
  readonly clientId: number;
  readonly seq: number;
  /** Null when the header did not decode. */
  readonly op: CommandOp | null;
  /** True when this is a retry answered from the remembered result. */
  readonly duplicate: boolean;
  readonly result: CommandResult;
}

export interface LookupResult {
  /** How many leading keys are committed (and not expired when `nowMs` was given). */
  readonly count: number;
  /** Records of those `count` keys, in order. */
  readonly records: readonly BlockRecord[];
}

export interface NamespaceStats {
  readonly namespace: string;
  readonly usageBytes: number;
  readonly blockCount: number;
  readonly garbageBytes: number;
  readonly garbageCount: number;
  readonly quotaBytes: number | null;
}

export interface PurgeCandidate extends BlockRef {
  readonly deletingSinceMs: number;
}

interface Session {
  /** Every remembered seq is above it; retries at or below it are answered REQUEST_EXPIRED. */
  floorSeq: number;
  count: number;
  lastSeenMs: number;
  /** Highest seq remembered: a seq above it is new, no store read needed to de-duplicate it. */
  highSeq: number;
}

// latin1Slice on the bytes themselves: no Buffer view per key (the cache store does the same).
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const VIEW_LATIN1 = (b: Uint8Array): string => latin1Slice.call(b, 0, b.byteLength);

function encodeU64(v: number): Uint8Array {
  return new Writer(8).u64(v).finish();
}
function decodeU64(b: Uint8Array): number {
  const r = new Reader(b);
  const v = r.u64();
  r.end();
  return v;
}

function encodeSession(s: Session): Uint8Array {
  return new Writer(32).u64(s.floorSeq).u32(s.count).u64(s.lastSeenMs).u64(s.highSeq).finish();
}
function decodeSession(b: Uint8Array): Session {
  const r = new Reader(b);
  const s = { floorSeq: r.u64(), count: r.u32(), lastSeenMs: r.u64(), highSeq: r.u64() };
  r.end();
  return s;
}

/** Runs a validator that throws a TwError and turns it into a coded result. */
function check(fn: () => void, code: CommandError['code'], details: Record<string, string | number> = {}): CommandError | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (isTwError(err)) return errorResult(code, err.message, { ...details, cause: err.code });
    throw err;
  }
}

function keyError(key: Uint8Array, at?: number): CommandError | null {
  if (key.byteLength === 0 || key.byteLength > KEY_MAX_BYTES) {
    return errorResult('TW_BLOCKMAP_BAD_KEY', `key ${at === undefined ? '' : `#${at} `}is ${key.byteLength} bytes; keys are 1-${KEY_MAX_BYTES} bytes`, {
      lengthBytes: key.byteLength,
      ...(at === undefined ? {} : { at }),
    });
  }
  return null;
}

function redundancyError(r: Redundancy, at?: number): CommandError | null {
  return check(() => validateRedundancy(r), 'TW_BLOCKMAP_BAD_REDUNDANCY', at === undefined ? {} : { at });
}

function namespaceNameError(name: string): CommandError | null {
  return check(() => validateNamespace(name), 'TW_BLOCKMAP_BAD_NAMESPACE');
}

/** Staged effects of one apply: store ops, and in-memory changes made only once the batch is written. */
class Tx {
  readonly ops: KvOp[] = [];
  readonly after: (() => void)[] = [];
  put(key: Uint8Array, value: Uint8Array): void {
    this.ops.push({ type: 'put', key, value });
  }
  del(key: Uint8Array): void {
    this.ops.push({ type: 'del', key });
  }
  then(fn: () => void): void {
    this.after.push(fn);
  }
}

export interface OpenBlockMapOptions {
  readonly signal?: AbortSignal;
}

/** Opens the block map kept in `store` (empty store: empty map). */
export async function openBlockMap(store: KvStore, options: OpenBlockMapOptions = {}): Promise<BlockMap> {
  const map = new BlockMap(store);
  options.signal?.throwIfAborted();
  await map.reload();
  return map;
}

export class BlockMap {
  readonly #store: KvStore;
  #applied = 0;
  #nextVersion = 1;
  #namespaces = new Map<string, NamespaceInfo>();
  #cluster: ClusterMeta | null = null;
  /** By node index (registration order). */
  #nodes: NodeRecord[] = [];
  #nodeIndexById = new Map<string, number>();
  #pgMap: PgMap | null = null;
  #sessions = new Map<number, Session>();
  #queue: Promise<unknown> = Promise.resolve();
  /** Set when a store write failed (memory may be ahead of disk) or a restore is incomplete. */
  #broken: { code: 'TW_BLOCKMAP_CORRUPT_STATE' | 'TW_BLOCKMAP_RESTORE_INCOMPLETE'; why: string } | null = null;

  /** Use {@link openBlockMap}. */
  constructor(store: KvStore) {
    this.#store = store;
  }

  /** Reloads every cache from the store. Called by openBlockMap and after a restore. */
  async reload(): Promise<void> {
    const s = this.#store;
    const [applied, next, cluster, pg, restoring] = await s.getMany([META_APPLIED, META_NEXT_VERSION, META_CLUSTER, META_PG_MAP, META_RESTORING]);
    if (restoring !== undefined) {
      this.#broken = { code: 'TW_BLOCKMAP_RESTORE_INCOMPLETE', why: 'a snapshot restore was interrupted; install the snapshot again' };
      return;
    }
    try {
      this.#applied = applied === undefined ? 0 : decodeU64(applied);
      this.#nextVersion = next === undefined ? 1 : decodeU64(next);
      this.#cluster = cluster === undefined ? null : decodeClusterMeta(cluster);
      this.#pgMap = pg === undefined || this.#cluster === null ? null : decodePgMap(pg, this.#cluster.rules);
      const namespaces = new Map<string, NamespaceInfo>();
      for await (const [, v] of kvEntries(s, prefixRange(tagKey(TAG_NAMESPACE)))) {
        const ns = decodeNamespace(v);
        namespaces.set(ns.name, ns);
      }
      const nodes: NodeRecord[] = [];
      const byId = new Map<string, number>();
      for await (const [k, v] of kvEntries(s, prefixRange(tagKey(TAG_NODE)))) {
        const index = new DataView(k.buffer, k.byteOffset, k.byteLength).getUint32(1, false);
        const node = decodeNode(v);
        assert(index === nodes.length, 'node indexes are dense');
        nodes.push(node);
        byId.set(node.id, index);
      }
      const sessions = new Map<number, Session>();
      for await (const [k, v] of kvEntries(s, prefixRange(tagKey(TAG_SESSION)))) sessions.set(getU64BE(k, 1), decodeSession(v));
      this.#namespaces = namespaces;
      this.#nodes = nodes;
      this.#nodeIndexById = byId;
      this.#sessions = sessions;
      this.#broken = null;
    } catch (err) {
      if (err instanceof DecodeError || err instanceof AssertionFailure) {
        throw blockMapErrors.create('TW_BLOCKMAP_CORRUPT_STATE', `block map store does not decode: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  #checkUsable(): void {
    if (this.#broken !== null) throw blockMapErrors.create(this.#broken.code, this.#broken.why);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------- apply

  /** Applies the committed log entry at `index` (indexes increase; gaps allowed). */
  apply(index: number, command: Uint8Array): Promise<ApplyOutcome> {
    return this.#serial(() => this.#apply(index, command));
  }

  /**
   * Applies consecutive committed entries in order, exactly as `apply` one by one would (same
   * effects, same results), but first reads every block record they touch with ONE store read
   * when the store can prefetch (a caching store): the entries' own reads then do not wait on
   * the store. One outcome per entry.
   */
  applyBatch(entries: readonly { readonly index: number; readonly data: Uint8Array }[]): Promise<ApplyOutcome[]> {
    return this.#serial(async () => {
      const decoded: (CommandEnvelope | undefined)[] = new Array<CommandEnvelope | undefined>(entries.length);
      if (this.#store.prefetch !== undefined && entries.length > 0) {
        const keys: Uint8Array[] = [];
        for (let i = 0; i < entries.length; i++) {
          const data = entries[i]!.data;
          if (data.byteLength > COMMAND_MAX_BYTES) continue;
          try {
            const env = decodeCommand(data);
            decoded[i] = env;
            const c = env.command;
            if (c.op === 'commit-blocks') for (const b of c.blocks) keys.push(blockKey(c.namespace, b.key));
            else if (c.op === 'delete-blocks' || c.op === 'touch-blocks') for (const k of c.keys) keys.push(blockKey(c.namespace, k));
            else if (c.op === 'purge-blocks') for (const r of c.refs) keys.push(blockKey(r.namespace, r.key));
          } catch (err) {
            // Bad commands and keys are answered by #apply with a coded result; nothing to read ahead.
            if (!(err instanceof DecodeError) && !isTwError(err)) throw err;
          }
        }
        this.#checkUsable();
        if (keys.length > 0) await this.#store.prefetch(keys);
      }
      const out: ApplyOutcome[] = [];
      for (let i = 0; i < entries.length; i++) out.push(await this.#apply(entries[i]!.index, entries[i]!.data, decoded[i]));
      return out;
    });
  }

  get appliedIndex(): number {
    return this.#applied;
  }

  async #apply(index: number, bytes: Uint8Array, predecoded?: CommandEnvelope): Promise<ApplyOutcome> {
    this.#checkUsable();
    if (!Number.isSafeInteger(index) || index <= this.#applied) {
      return {
        index,
        clientId: 0,
        seq: 0,
        op: null,
        duplicate: false,
        result: errorResult('TW_BLOCKMAP_INDEX_REPLAYED', `log index ${index} is not above the applied index ${this.#applied}`, { index, appliedIndex: this.#applied }),
      };
    }
    const tx = new Tx();
    let outcome: ApplyOutcome;
    let header: ReturnType<typeof decodeHeader> | null = null;
    try {
      header = bytes.byteLength > COMMAND_MAX_BYTES ? null : decodeHeader(bytes);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
    if (header === null) {
      const why = bytes.byteLength > COMMAND_MAX_BYTES ? `command of ${bytes.byteLength} bytes exceeds ${COMMAND_MAX_BYTES}` : 'command header does not decode';
      outcome = { index, clientId: 0, seq: 0, op: null, duplicate: false, result: errorResult('TW_BLOCKMAP_BAD_COMMAND', why) };
    } else {
      const { clientId, seq, op } = header;
      const session = clientId === 0 ? undefined : this.#sessions.get(clientId);
      const remembered = session === undefined || seq > session.highSeq ? undefined : await this.#store.get(resultKey(clientId, seq));
      if (remembered !== undefined) {
        outcome = { index, clientId, seq, op, duplicate: true, result: this.#decodeStored(remembered, decodeResult) };
      } else if (session !== undefined && seq <= session.floorSeq) {
        const result = errorResult('TW_BLOCKMAP_REQUEST_EXPIRED', `request ${seq} of client ${clientId} is older than the remembered window (above ${session.floorSeq})`, { clientId, seq });
        outcome = { index, clientId, seq, op, duplicate: false, result };
      } else {
        let result: CommandResult;
        let env: CommandEnvelope | null = null;
        try {
          env = predecoded ?? decodeCommand(bytes);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          result = errorResult('TW_BLOCKMAP_BAD_COMMAND', `${op} command does not decode: ${err.message}`, { op });
        }
        if (env !== null) result = await this.#exec(env, tx);
        if (clientId !== 0) await this.#remember(tx, clientId, seq, header.nowMs, result!);
        outcome = { index, clientId, seq, op, duplicate: false, result: result! };
      }
    }
    tx.put(META_APPLIED, encodeU64(index));
    try {
      await this.#store.write(tx.ops);
    } catch (err) {
      this.#broken = { code: 'TW_BLOCKMAP_CORRUPT_STATE', why: `a store write failed at index ${index}; reopen the block map from its store` };
      throw err;
    }
    for (const fn of tx.after) fn();
    this.#applied = index;
    return outcome;
  }

  #decodeStored<A, T>(bytes: A, decode: (b: A) => T): T {
    try {
      return decode(bytes);
    } catch (err) {
      if (err instanceof DecodeError) throw blockMapErrors.create('TW_BLOCKMAP_CORRUPT_STATE', `stored value does not decode: ${err.message}`, { cause: err });
      throw err;
    }
  }

  async #remember(tx: Tx, clientId: number, seq: number, nowMs: number, result: CommandResult): Promise<void> {
    const prior = this.#sessions.get(clientId);
    const session: Session = prior === undefined ? { floorSeq: 0, count: 0, lastSeenMs: nowMs, highSeq: 0 } : { ...prior };
    if (prior === undefined && this.#sessions.size >= CLIENT_SESSIONS_MAX) {
      // Forget the least recently seen client (ties: smallest id): deterministic on every replica.
      let victim = -1;
      let victimSeen = Infinity;
      for (const [id, s] of this.#sessions) {
        if (s.lastSeenMs < victimSeen || (s.lastSeenMs === victimSeen && id < victim)) {
          victim = id;
          victimSeen = s.lastSeenMs;
        }
      }
      for await (const [k] of kvEntries(this.#store, prefixRange(resultPrefix(victim)))) tx.del(k);
      tx.del(sessionKey(victim));
      tx.then(() => this.#sessions.delete(victim));
    }
    session.lastSeenMs = Math.max(session.lastSeenMs, nowMs);
    session.count++;
    session.highSeq = Math.max(session.highSeq, seq);
    tx.put(resultKey(clientId, seq), encodeResult(result));
    if (session.count > DEDUP_RESULTS_PER_CLIENT_MAX) {
      const oldestSeq = await this.#oldestRemembered(clientId, session.floorSeq);
      const evict = Math.min(oldestSeq, seq);
      tx.del(resultKey(clientId, evict));
      session.floorSeq = Math.max(session.floorSeq, evict);
      session.count--;
    }
    tx.put(sessionKey(clientId), encodeSession(session));
    tx.then(() => this.#sessions.set(clientId, session));
  }

  /**
   * The smallest remembered seq of a client (every one is above floorSeq). Clients number their
   * requests 1, 2, 3..., so probing the next few seqs finds it in one batched read; gaps fall
   * back to an ordered scan.
   */
  async #oldestRemembered(clientId: number, floorSeq: number): Promise<number> {
    const probes = Array.from({ length: 16 }, (_, i) => floorSeq + 1 + i);
    const found = await this.#store.getMany(probes.map((q) => resultKey(clientId, q)));
    const hit = found.findIndex((v) => v !== undefined);
    if (hit >= 0) return probes[hit]!;
    const [oldest] = await this.#firstEntry(prefixRange(resultPrefix(clientId), 1));
    return oldest === undefined ? Infinity : getU64BE(oldest[0], 9);
  }

  async #firstEntry(range: ReturnType<typeof prefixRange>): Promise<(readonly [Uint8Array, Uint8Array])[]> {
    const it = this.#store.iterator(range);
    try {
      return await it.next(1);
    } finally {
      await it.close();
    }
  }

  async #exec(env: CommandEnvelope, tx: Tx): Promise<CommandResult> {
    const c: Command = env.command;
    const now = env.nowMs;
    switch (c.op) {
      case 'init-cluster':
        return this.#initCluster(c.rules, tx);
      case 'create-namespace':
        return this.#createNamespace(c, now, tx);
      case 'update-namespace':
        return this.#updateNamespace(c, tx);
      case 'delete-namespace':
        return this.#deleteNamespace(c.name, tx);
      case 'commit-blocks':
        return this.#commitBlocks(c.namespace, c.blocks, now, tx);
      case 'delete-blocks':
        return this.#deleteBlocks(c.namespace, c.keys, now, tx);
      case 'touch-blocks':
        return this.#touchBlocks(c.namespace, c.keys, now, tx);
      case 'purge-blocks':
        return this.#purgeBlocks(c.graceMs, c.refs, now, tx);
      case 'register-node':
        return this.#registerNode(c, now, tx);
      case 'set-node-state':
        return this.#setNodeState(c, tx);
      case 'mark-node-down':
        return this.#markNodeDown(c, tx);
    }
  }

  // ---------------------------------------------------------------- namespaces

  #namespaceSettingsError(s: { quotaBytes?: number | null; defaultTtlMs?: number; redundancy?: Redundancy; tokenHash?: Uint8Array }): CommandError | null {
    if (s.quotaBytes !== undefined && s.quotaBytes !== null && s.quotaBytes > QUOTA_MAX_BYTES) {
      return errorResult('TW_BLOCKMAP_BAD_NAMESPACE', `quota ${s.quotaBytes} exceeds ${QUOTA_MAX_BYTES} bytes`, { field: 'quotaBytes' });
    }
    if (s.defaultTtlMs !== undefined && s.defaultTtlMs > TTL_MAX_MS) {
      return errorResult('TW_BLOCKMAP_BAD_NAMESPACE', `default TTL ${s.defaultTtlMs} ms exceeds ${TTL_MAX_MS} ms`, { field: 'defaultTtlMs' });
    }
    if (s.tokenHash !== undefined && s.tokenHash.byteLength > TOKEN_HASH_MAX_BYTES) {
      return errorResult('TW_BLOCKMAP_BAD_NAMESPACE', `token hash of ${s.tokenHash.byteLength} bytes exceeds ${TOKEN_HASH_MAX_BYTES}`, { field: 'tokenHash' });
    }
    if (s.redundancy !== undefined) return redundancyError(s.redundancy);
    return null;
  }

  #createNamespace(c: Extract<Command, { op: 'create-namespace' }>, now: number, tx: Tx): CommandResult {
    const bad = namespaceNameError(c.name) ?? this.#namespaceSettingsError(c);
    if (bad !== null) return bad;
    if (this.#namespaces.has(c.name)) return errorResult('TW_BLOCKMAP_NAMESPACE_EXISTS', `namespace ${c.name} already exists`, { namespace: c.name });
    if (this.#namespaces.size >= NAMESPACES_MAX) return errorResult('TW_BLOCKMAP_TOO_MANY_NAMESPACES', `the cluster holds ${NAMESPACES_MAX} namespaces, the most it allows`);
    const ns: NamespaceInfo = {
      name: c.name,
      quotaBytes: c.quotaBytes,
      defaultTtlMs: c.defaultTtlMs,
      redundancy: c.redundancy,
      tokenHash: c.tokenHash,
      usageBytes: 0,
      blockCount: 0,
      garbageBytes: 0,
      garbageCount: 0,
      createdAtMs: now,
    };
    this.#putNamespace(tx, ns);
    return { ok: true, op: 'namespace', name: c.name };
  }

  #updateNamespace(c: Extract<Command, { op: 'update-namespace' }>, tx: Tx): CommandResult {
    const bad = namespaceNameError(c.name) ?? this.#namespaceSettingsError(c);
    if (bad !== null) return bad;
    const ns = this.#namespaces.get(c.name);
    if (ns === undefined) return unknownNamespace(c.name);
    this.#putNamespace(tx, {
      ...ns,
      ...(c.quotaBytes !== undefined ? { quotaBytes: c.quotaBytes } : {}),
      ...(c.defaultTtlMs !== undefined ? { defaultTtlMs: c.defaultTtlMs } : {}),
      ...(c.redundancy !== undefined ? { redundancy: c.redundancy } : {}),
      ...(c.tokenHash !== undefined ? { tokenHash: c.tokenHash } : {}),
    });
    return { ok: true, op: 'namespace', name: c.name };
  }

  #deleteNamespace(name: string, tx: Tx): CommandResult {
    const bad = namespaceNameError(name);
    if (bad !== null) return bad;
    const ns = this.#namespaces.get(name);
    if (ns === undefined) return unknownNamespace(name);
    if (ns.blockCount > 0 || ns.garbageCount > 0) {
      return errorResult('TW_BLOCKMAP_NAMESPACE_NOT_EMPTY', `namespace ${name} holds ${ns.blockCount} blocks and ${ns.garbageCount} awaiting purge`, {
        namespace: name,
        blockCount: ns.blockCount,
        garbageCount: ns.garbageCount,
      });
    }
    tx.del(namespaceKey(name));
    tx.then(() => this.#namespaces.delete(name));
    return { ok: true, op: 'namespace', name };
  }

  #putNamespace(tx: Tx, ns: NamespaceInfo): void {
    tx.put(namespaceKey(ns.name), encodeNamespace(ns));
    tx.then(() => this.#namespaces.set(ns.name, ns));
  }

  #lookupNamespace(name: string): NamespaceInfo | CommandError {
    const bad = namespaceNameError(name);
    if (bad !== null) return bad;
    return this.#namespaces.get(name) ?? unknownNamespace(name);
  }

  // ---------------------------------------------------------------- blocks

  #idOf = (index: number): string => {
    const node = this.#nodes[index];
    if (node === undefined) throw new DecodeError(`node index ${index} is not in the cluster map`);
    return node.id;
  };

  #decodeBlock(ns: string, key: Uint8Array, value: Uint8Array): BlockRecord {
    return this.#decodeStored(value, (v) => decodeBlock(ns, key, v, this.#idOf));
  }

  #encodeBlock(rec: BlockRecord): Uint8Array {
    return encodeBlock(
      rec,
      rec.fragmentNodes.map((id) => this.#nodeIndexById.get(id)!),
    );
  }

  #validateCommit(b: BlockCommit, at: number, ns: NamespaceInfo): CommandError | null {
    const bad = keyError(b.key, at);
    if (bad !== null) return bad;
    if (b.sizeBytes > BLOCK_SIZE_MAX_BYTES) return errorResult('TW_BLOCKMAP_BAD_RECORD', `record #${at}: size ${b.sizeBytes} exceeds ${BLOCK_SIZE_MAX_BYTES} bytes`, { at, field: 'sizeBytes' });
    const redundancy = b.redundancy ?? ns.redundancy;
    const badR = redundancyError(redundancy, at);
    if (badR !== null) return badR;
    if (b.fragmentNodes.length !== fragmentCount(redundancy)) {
      return errorResult('TW_BLOCKMAP_BAD_RECORD', `record #${at}: ${b.fragmentNodes.length} fragment nodes for a redundancy of ${fragmentCount(redundancy)} fragments`, {
        at,
        field: 'fragmentNodes',
      });
    }
    for (const id of b.fragmentNodes) {
      const i = this.#nodeIndexById.get(id);
      if (i === undefined || this.#nodes[i]!.state === 'out') {
        return errorResult('TW_BLOCKMAP_UNKNOWN_NODE', `record #${at}: fragment node ${JSON.stringify(id.slice(0, 80))} is not a member of the cluster map`, { at, nodeId: id.slice(0, 80) });
      }
    }
    if (b.ttlMs !== undefined && b.ttlMs > TTL_MAX_MS) return errorResult('TW_BLOCKMAP_BAD_RECORD', `record #${at}: TTL ${b.ttlMs} ms exceeds ${TTL_MAX_MS}`, { at, field: 'ttlMs' });
    if (b.layout !== undefined && b.layout !== null) {
      const layout: KvLayout = b.layout;
      const badL = check(() => validateKvLayout(layout), 'TW_BLOCKMAP_BAD_RECORD', { at, field: 'layout' });
      if (badL !== null) return badL;
    }
    return null;
  }

  async #commitBlocks(nsName: string, blocks: readonly BlockCommit[], now: number, tx: Tx): Promise<CommandResult> {
    if (this.#cluster === null) return notInitialized();
    const ns = this.#lookupNamespace(nsName);
    if ('ok' in ns) return ns;
    if (blocks.length > BATCH_RECORDS_MAX) return tooLarge(blocks.length);
    for (let i = 0; i < blocks.length; i++) {
      const bad = this.#validateCommit(blocks[i]!, i, ns);
      if (bad !== null) return bad;
    }
    const keys = blocks.map((b) => blockKey(nsName, b.key));
    const existing = await this.#store.getMany(keys);
    // Records of this batch by key, so that a key committed twice in one batch supersedes itself.
    const batch = new Map<string, BlockRecord>();
    let usage = ns.usageBytes;
    let count = ns.blockCount;
    let garbageBytes = ns.garbageBytes;
    let garbageCount = ns.garbageCount;
    let version = this.#nextVersion;
    const versions: number[] = [];
    const superseded: RetiredBlock[] = [];
    const records: BlockRecord[] = [];
    const retired: BlockRecord[] = [];
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      const s = VIEW_LATIN1(keys[i]!);
      const prevBytes = existing[i];
      const prev = batch.get(s) ?? (prevBytes === undefined ? undefined : this.#decodeBlock(nsName, b.key, prevBytes));
      if (prev !== undefined) {
        if (prev.state === 'committed') {
          usage -= prev.sizeBytes;
          count--;
          garbageBytes += prev.sizeBytes;
          garbageCount++;
          retired.push({ ...prev, state: 'deleting', deletingSinceMs: now });
        } else {
          retired.push(prev);
        }
        superseded.push({ key: prev.key, version: prev.version, writeVersion: prev.writeVersion, sizeBytes: prev.sizeBytes, fragmentNodes: prev.fragmentNodes });
      }
      const assigned = version++;
      const rec: BlockRecord = {
        namespace: nsName,
        key: Uint8Array.from(b.key),
        version: assigned,
        writeVersion: b.writeVersion ?? BigInt(assigned),
        sizeBytes: b.sizeBytes,
        checksum: b.checksum,
        layout: b.layout ?? null,
        redundancy: b.redundancy ?? ns.redundancy,
        fragmentNodes: [...b.fragmentNodes],
        state: 'committed',
        createdAtMs: now,
        lastAccessMs: now,
        ttlMs: b.ttlMs ?? ns.defaultTtlMs,
        pinned: b.pinned ?? false,
        deletingSinceMs: 0,
      };
      usage += rec.sizeBytes;
      count++;
      batch.set(s, rec);
      records.push(rec);
      versions.push(rec.version);
    }
    if (ns.quotaBytes !== null && usage > ns.quotaBytes && usage > ns.usageBytes) {
      return errorResult('TW_BLOCKMAP_QUOTA_EXCEEDED', `namespace ${nsName}: the batch would take usage from ${ns.usageBytes} to ${usage} bytes, past the quota of ${ns.quotaBytes}`, {
        namespace: nsName,
        usageBytes: ns.usageBytes,
        quotaBytes: ns.quotaBytes,
        wouldBeBytes: usage,
      });
    }
    for (const old of retired) {
      tx.put(garbageKey(nsName, old.key, old.version), this.#encodeBlock(old));
      tx.put(purgeKey(old.deletingSinceMs, nsName, old.key, old.version), new Uint8Array(0));
    }
    for (let i = 0; i < records.length; i++) {
      // A later record of the same key overwrites an earlier one: ops apply in order.
      tx.put(keys[i]!, this.#encodeBlock(records[i]!));
    }
    const nextVersion = version;
    tx.put(META_NEXT_VERSION, encodeU64(nextVersion));
    tx.then(() => {
      this.#nextVersion = nextVersion;
    });
    this.#putNamespace(tx, { ...ns, usageBytes: usage, blockCount: count, garbageBytes, garbageCount });
    return { ok: true, op: 'commit-blocks', versions, superseded };
  }

  async #deleteBlocks(nsName: string, keys: readonly Uint8Array[], now: number, tx: Tx): Promise<CommandResult> {
    const ns = this.#lookupNamespace(nsName);
    if ('ok' in ns) return ns;
    if (keys.length > BATCH_RECORDS_MAX) return tooLarge(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const bad = keyError(keys[i]!, i);
      if (bad !== null) return bad;
    }
    const bkeys = keys.map((k) => blockKey(nsName, k));
    const existing = await this.#store.getMany(bkeys);
    const seen = new Set<string>();
    let deleted = 0;
    let usage = ns.usageBytes;
    let count = ns.blockCount;
    let garbageBytes = ns.garbageBytes;
    let garbageCount = ns.garbageCount;
    for (let i = 0; i < keys.length; i++) {
      const s = VIEW_LATIN1(bkeys[i]!);
      const v = existing[i];
      if (seen.has(s) || v === undefined) continue;
      seen.add(s);
      const rec = this.#decodeBlock(nsName, keys[i]!, v);
      if (rec.state !== 'committed') continue;
      const gone: BlockRecord = { ...rec, state: 'deleting', deletingSinceMs: now };
      tx.put(bkeys[i]!, this.#encodeBlock(gone));
      tx.put(purgeKey(now, nsName, rec.key, rec.version), new Uint8Array(0));
      usage -= rec.sizeBytes;
      count--;
      garbageBytes += rec.sizeBytes;
      garbageCount++;
      deleted++;
    }
    if (deleted > 0) this.#putNamespace(tx, { ...ns, usageBytes: usage, blockCount: count, garbageBytes, garbageCount });
    return { ok: true, op: 'delete-blocks', deleted, missing: keys.length - deleted };
  }

  async #touchBlocks(nsName: string, keys: readonly Uint8Array[], now: number, tx: Tx): Promise<CommandResult> {
    const ns = this.#lookupNamespace(nsName);
    if ('ok' in ns) return ns;
    if (keys.length > BATCH_RECORDS_MAX) return tooLarge(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const bad = keyError(keys[i]!, i);
      if (bad !== null) return bad;
    }
    const bkeys = keys.map((k) => blockKey(nsName, k));
    const existing = await this.#store.getMany(bkeys);
    const seen = new Set<string>();
    let touched = 0;
    for (let i = 0; i < keys.length; i++) {
      const s = VIEW_LATIN1(bkeys[i]!);
      const v = existing[i];
      if (seen.has(s) || v === undefined) continue;
      seen.add(s);
      const rec = this.#decodeBlock(nsName, keys[i]!, v);
      if (rec.state !== 'committed' || now < rec.lastAccessMs + TOUCH_GRANULARITY_MS) continue;
      tx.put(bkeys[i]!, this.#encodeBlock({ ...rec, lastAccessMs: now }));
      touched++;
    }
    return { ok: true, op: 'touch-blocks', touched };
  }

  async #purgeBlocks(graceMs: number, refs: readonly BlockRef[], now: number, tx: Tx): Promise<CommandResult> {
    if (refs.length > BATCH_RECORDS_MAX) return tooLarge(refs.length);
    for (let i = 0; i < refs.length; i++) {
      const bad = namespaceNameError(refs[i]!.namespace) ?? keyError(refs[i]!.key, i);
      if (bad !== null) return bad;
    }
    const live = await this.#store.getMany(refs.map((r) => blockKey(r.namespace, r.key)));
    const garbage = await this.#store.getMany(refs.map((r) => garbageKey(r.namespace, r.key, r.version)));
    const seen = new Set<string>();
    const touched = new Map<string, NamespaceInfo>();
    const purged: PurgedBlock[] = [];
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i]!;
      const gk = garbageKey(ref.namespace, ref.key, ref.version);
      const s = VIEW_LATIN1(gk);
      if (seen.has(s)) continue;
      seen.add(s);
      const ns = touched.get(ref.namespace) ?? this.#namespaces.get(ref.namespace);
      if (ns === undefined) continue;
      let rec: BlockRecord | undefined;
      let where: Uint8Array | undefined;
      const lv = live[i];
      if (lv !== undefined) {
        const r = this.#decodeBlock(ref.namespace, ref.key, lv);
        if (r.version === ref.version && r.state === 'deleting') {
          rec = r;
          where = blockKey(ref.namespace, ref.key);
        }
      }
      const gv = garbage[i];
      if (rec === undefined && gv !== undefined) {
        rec = this.#decodeBlock(ref.namespace, ref.key, gv);
        where = gk;
      }
      if (rec === undefined || where === undefined || rec.deletingSinceMs + graceMs > now) continue;
      tx.del(where);
      tx.del(purgeKey(rec.deletingSinceMs, ref.namespace, ref.key, ref.version));
      touched.set(ref.namespace, { ...ns, garbageBytes: ns.garbageBytes - rec.sizeBytes, garbageCount: ns.garbageCount - 1 });
      purged.push({ namespace: ref.namespace, key: rec.key, version: rec.version, writeVersion: rec.writeVersion, sizeBytes: rec.sizeBytes, fragmentNodes: rec.fragmentNodes });
    }
    for (const ns of touched.values()) this.#putNamespace(tx, ns);
    return { ok: true, op: 'purge-blocks', purged, skipped: refs.length - purged.length };
  }

  // ---------------------------------------------------------------- cluster

  #initCluster(rules: ClusterRules, tx: Tx): CommandResult {
    if (this.#cluster !== null) return errorResult('TW_BLOCKMAP_CLUSTER_INITIALIZED', 'the cluster is already initialised: its PG count and placement rules are fixed');
    const bad =
      check(() => validateClusterMap({ epoch: 0, domainLevels: rules.domainLevels, nodes: [] }), 'TW_BLOCKMAP_BAD_CLUSTER_RULES') ??
      check(() => normalizeRules(placementRulesOf(rules)), 'TW_BLOCKMAP_BAD_CLUSTER_RULES');
    if (bad !== null) return bad;
    if (!rules.domainLevels.includes(rules.failureDomain)) {
      return errorResult('TW_BLOCKMAP_BAD_CLUSTER_RULES', `failure domain ${rules.failureDomain} is not one of the domain levels`, { field: 'failureDomain' });
    }
    const meta: ClusterMeta = { epoch: 1, rules: { ...rules, domainLevels: [...rules.domainLevels] }, nextNodeIndex: 0 };
    tx.put(META_CLUSTER, encodeClusterMeta(meta));
    tx.then(() => {
      this.#cluster = meta;
    });
    return { ok: true, op: 'init-cluster', epoch: 1 };
  }

  /** Validates the would-be node list; on success stages the node, a new epoch and the rebuilt PG map. */
  #changeNodes(tx: Tx, index: number, node: NodeRecord, membershipChanged: boolean): CommandResult {
    const meta = this.#cluster!;
    const nodes = [...this.#nodes];
    nodes[index] = node;
    const epoch = membershipChanged ? meta.epoch + 1 : meta.epoch;
    const map: ClusterMap = {
      epoch,
      domainLevels: meta.rules.domainLevels,
      nodes: nodes.map((n) => ({ id: n.id, address: n.address, domain: n.domain, weight: n.weight, state: n.state })),
    };
    const bad = check(() => validateClusterMap(map), 'TW_BLOCKMAP_BAD_NODE', { nodeId: node.id });
    if (bad !== null) return bad;
    const stored: NodeRecord = membershipChanged ? { ...node, lastHeartbeatEpoch: node.state === 'up' ? epoch : node.lastHeartbeatEpoch } : node;
    nodes[index] = stored;
    tx.put(nodeKey(index), encodeNode(stored));
    const nextMeta: ClusterMeta = { ...meta, epoch, nextNodeIndex: Math.max(meta.nextNodeIndex, index + 1) };
    tx.put(META_CLUSTER, encodeClusterMeta(nextMeta));
    let pg = this.#pgMap;
    if (membershipChanged) {
      try {
        pg = pg === null ? buildPgMap(map, placementRulesOf(meta.rules)) : rebuildPgMap(pg, map);
        tx.put(META_PG_MAP, encodePgMap(pg));
      } catch (err) {
        // Too few nodes or domains to place a stripe: the PG map stays as it was (stale) until
        // membership allows one; the cluster map still moves.
        if (!isTwError(err)) throw err;
      }
    }
    const pgAfter = pg;
    tx.then(() => {
      this.#cluster = nextMeta;
      this.#nodes = nodes;
      this.#nodeIndexById.set(stored.id, index);
      this.#pgMap = pgAfter;
    });
    return { ok: true, op: 'node', epoch, changed: membershipChanged, pgMapEpoch: pgAfter === null ? null : pgAfter.epoch };
  }

  #registerNode(c: Extract<Command, { op: 'register-node' }>, now: number, tx: Tx): CommandResult {
    if (this.#cluster === null) return notInitialized();
    if (Buffer.byteLength(c.address, 'utf8') > NODE_ADDRESS_MAX_BYTES) return errorResult('TW_BLOCKMAP_BAD_NODE', `address exceeds ${NODE_ADDRESS_MAX_BYTES} bytes`, { field: 'address' });
    const index = this.#nodeIndexById.get(c.id);
    if (index === undefined) {
      const node: NodeRecord = { id: c.id, address: c.address, domain: c.domain, weight: c.weight, state: 'up', lastHeartbeatMs: now, lastHeartbeatEpoch: 0, registeredAtMs: now };
      return this.#changeNodes(tx, this.#cluster.nextNodeIndex, node, true);
    }
    const prev = this.#nodes[index]!;
    if (prev.state === 'out') return removed(c.id);
    const state = prev.state === 'down' ? 'up' : prev.state;
    const changed = prev.address !== c.address || prev.domain !== c.domain || prev.weight !== c.weight || prev.state !== state;
    const node: NodeRecord = { ...prev, address: c.address, domain: c.domain, weight: c.weight, state, lastHeartbeatMs: Math.max(prev.lastHeartbeatMs, now), lastHeartbeatEpoch: this.#cluster.epoch };
    return this.#changeNodes(tx, index, node, changed);
  }

  #setNodeState(c: Extract<Command, { op: 'set-node-state' }>, tx: Tx): CommandResult {
    if (this.#cluster === null) return notInitialized();
    const index = this.#nodeIndexById.get(c.id);
    if (index === undefined) return unknownNode(c.id);
    const prev = this.#nodes[index]!;
    if (prev.state === 'out' && c.state !== 'out') return removed(c.id);
    const weight = c.weight ?? prev.weight;
    const changed = prev.state !== c.state || prev.weight !== weight;
    return this.#changeNodes(tx, index, { ...prev, state: c.state, weight }, changed);
  }

  #markNodeDown(c: Extract<Command, { op: 'mark-node-down' }>, tx: Tx): CommandResult {
    if (this.#cluster === null) return notInitialized();
    const index = this.#nodeIndexById.get(c.id);
    if (index === undefined) return unknownNode(c.id);
    const prev = this.#nodes[index]!;
    const down = prev.state === 'up' && prev.lastHeartbeatMs <= c.silentSinceMs;
    if (!down) return { ok: true, op: 'node', epoch: this.#cluster.epoch, changed: false, pgMapEpoch: this.#pgMap?.epoch ?? null };
    return this.#changeNodes(tx, index, { ...prev, state: 'down' }, true);
  }

  // ---------------------------------------------------------------- queries

  /** The checks both lookups make before reading: usable map, namespace, key count, each key. */
  #checkLookup(namespace: string, keys: readonly Uint8Array[]): void {
    this.#checkUsable();
    this.#queryNamespace(namespace);
    if (keys.length > LOOKUP_KEYS_MAX) throw blockMapErrors.create('TW_BLOCKMAP_BAD_QUERY', `lookupPrefix takes at most ${LOOKUP_KEYS_MAX} keys, got ${keys.length}`);
    for (let i = 0; i < keys.length; i++) {
      const bad = keyError(keys[i]!, i);
      if (bad !== null) throw blockMapErrors.create(bad.code, bad.message, { details: bad.details });
    }
  }

  /**
   * How many leading `keys` of `namespace` are committed, with their records, from one batched
   * store read. Stops at the first key that is missing, `deleting`, or (when `nowMs` is given)
   * expired by its TTL. Throws TW_BLOCKMAP_BAD_QUERY (over LOOKUP_KEYS_MAX keys, bad namespace
   * name), TW_BLOCKMAP_BAD_KEY, TW_BLOCKMAP_UNKNOWN_NAMESPACE.
   */
  async lookupPrefix(namespace: string, keys: readonly Uint8Array[], options: { nowMs?: number } = {}): Promise<LookupResult> {
    this.#checkLookup(namespace, keys);
    if (keys.length === 0) return { count: 0, records: [] };
    const values = await this.#store.getMany(keys.map((k) => blockKey(namespace, k)));
    const records: BlockRecord[] = [];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === undefined) break;
      const rec = this.#decodeBlock(namespace, keys[i]!, v);
      if (rec.state !== 'committed') break;
      if (options.nowMs !== undefined && isExpired(rec, options.nowMs)) break;
      records.push(rec);
    }
    return { count: records.length, records };
  }

  /**
   * lookupPrefix without decoding: the stored bytes of the leading committed, unexpired records,
   * one after another in `bytes` (record i spans offsets[i]..offsets[i + 1]; layout: STORED_BLOCK
   * in records.ts; fragment nodes are node indexes, see nodeIdOf), for answers that copy fields
   * instead of building BlockRecord objects. Same checks, and the same rule for where the prefix
   * stops, as lookupPrefix. From a store with getManyLatin1 (the coordinator's cache), a hit
   * allocates one key string and nothing else.
   */
  async lookupPrefixStored(namespace: string, keys: readonly Uint8Array[], options: { nowMs?: number } = {}): Promise<StoredLookup> {
    return this.#lookupStored(namespace, keys, options, false, (stored) => stored);
  }

  /**
   * lookupPrefixStored, handing its result to `use` at once (synchronously) and resolving to what
   * `use` returns. The result's bytes are in a buffer this map reuses for the next lookup, so
   * `use` must copy out what it keeps. A 1,024-key answer is ~100 KB: a fresh buffer each time
   * added to the external memory that makes V8 run full collections, which mark the whole record
   * cache (measured: a full collection every ~0.25 s under back-to-back lookups).
   */
  async lookupPrefixStoredWith<T>(namespace: string, keys: readonly Uint8Array[], options: { nowMs?: number }, use: (stored: StoredLookup) => T): Promise<T> {
    return this.#lookupStored(namespace, keys, options, true, use);
  }

  #lookupScratch: Buffer | undefined;

  /** `use` runs in the same synchronous stretch that fills the (maybe reused) buffer: no other lookup can run in between. */
  async #lookupStored<T>(namespace: string, keys: readonly Uint8Array[], options: { nowMs?: number }, reuse: boolean, use: (stored: StoredLookup) => T): Promise<T> {
    this.#checkLookup(namespace, keys);
    if (keys.length === 0) return use({ count: 0, bytes: new Uint8Array(0), offsets: [0] });
    let got: readonly (string | Uint8Array | undefined)[];
    if (this.#store.getManyLatin1 !== undefined) {
      // Block keys as latin1 strings, built in one scratch buffer (see blockKey for the layout).
      const prefix = blockKey(namespace, new Uint8Array(0));
      const scratch = Buffer.allocUnsafe(prefix.byteLength + KEY_MAX_BYTES);
      scratch.set(prefix, 0);
      const strs = new Array<string>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        scratch.set(keys[i]!, prefix.byteLength);
        strs[i] = scratch.toString('latin1', 0, prefix.byteLength + keys[i]!.byteLength);
      }
      got = await this.#store.getManyLatin1(strs);
    } else {
      got = await this.#store.getMany(keys.map((k) => blockKey(namespace, k)));
    }
    let present = 0;
    let size = 0;
    for (; present < got.length; present++) {
      const v = got[present];
      if (v === undefined) break;
      size += typeof v === 'string' ? v.length : v.byteLength;
    }
    let bytes: Buffer;
    if (!reuse || size > LOOKUP_SCRATCH_MAX_BYTES) bytes = Buffer.allocUnsafe(size);
    else {
      if (this.#lookupScratch === undefined || this.#lookupScratch.byteLength < size) this.#lookupScratch = Buffer.allocUnsafe(Math.min(LOOKUP_SCRATCH_MAX_BYTES, Math.max(size, 2 * (this.#lookupScratch?.byteLength ?? 0))));
      bytes = this.#lookupScratch;
    }
    const offsets: number[] = [0];
    let at = 0;
    // One decode check for the whole loop (its DecodeError becomes TW_BLOCKMAP_CORRUPT_STATE),
    // with the records read in place: no view per record.
    this.#decodeStored(got, (records) => {
      for (let i = 0; i < present; i++) {
        const v = records[i]!;
        const start = at;
        if (typeof v === 'string') at += bytes.write(v, at, 'latin1');
        else {
          bytes.set(v, at);
          at += v.byteLength;
        }
        if (!storedBlockLive(bytes, storedBlockTailAt(bytes, start, at), options.nowMs)) break;
        offsets.push(at);
      }
    });
    return use({ count: offsets.length - 1, bytes: bytes.subarray(0, offsets[offsets.length - 1]), offsets });
  }

  /** The node id of a node index in stored block records (lookupPrefixStored). Throws TW_BLOCKMAP_CORRUPT_STATE for an unknown index. */
  nodeIdOf(index: number): string {
    return this.#decodeStored(index, this.#idOf);
  }

  /** The current record of a key (committed or deleting), or undefined. */
  async getBlock(namespace: string, key: Uint8Array): Promise<BlockRecord | undefined> {
    this.#checkUsable();
    this.#queryNamespace(namespace);
    const bad = keyError(key);
    if (bad !== null) throw blockMapErrors.create(bad.code, bad.message, { details: bad.details });
    const v = await this.#store.get(blockKey(namespace, key));
    return v === undefined ? undefined : this.#decodeBlock(namespace, key, v);
  }

  /** A page of a namespace's current records in key order, after `afterKey`; `nextAfterKey` is null at the end. */
  async listBlocks(namespace: string, options: { afterKey?: Uint8Array; limit?: number } = {}): Promise<{ records: BlockRecord[]; nextAfterKey: Uint8Array | null }> {
    this.#checkUsable();
    this.#queryNamespace(namespace);
    const limit = checkLimit(options.limit ?? 1000);
    const prefix = blockPrefix(namespace);
    const range = prefixRange(prefix, limit);
    const records: BlockRecord[] = [];
    const it = this.#store.iterator(options.afterKey === undefined ? range : { ...range, gte: undefined, gt: blockKey(namespace, options.afterKey) });
    try {
      for (;;) {
        const page = await it.next(Math.min(limit, 256));
        if (page.length === 0) break;
        for (const [k, v] of page) {
          const key = userKeyOf(k, namespace).slice();
          records.push(this.#decodeBlock(namespace, key, v));
        }
      }
    } finally {
      await it.close();
    }
    return { records, nextAfterKey: records.length === limit ? records[records.length - 1]!.key : null };
  }

  /** Deleting versions whose deletion is at least `graceMs` old at `nowMs`, oldest first. */
  async listPurgeable(options: { nowMs: number; graceMs: number; limit?: number }): Promise<PurgeCandidate[]> {
    this.#checkUsable();
    const limit = checkLimit(options.limit ?? 1000);
    const cutoff = options.nowMs - options.graceMs;
    if (cutoff < 0) return [];
    const out: PurgeCandidate[] = [];
    for await (const [k] of kvEntries(this.#store, { gte: tagKey(TAG_PURGE), lt: purgeKeyBound(cutoff), limit })) {
      const p = decodePurgeKey(k);
      out.push({ namespace: p.namespace, key: p.key, version: p.version, deletingSinceMs: p.sinceMs });
    }
    return out;
  }

  /**
   * Liveness of fragments stored on `nodeId` (see fragment-liveness.ts), from one batched read of
   * the current records and, for refs whose version is not the current one, a bounded scan of
   * the key's superseded versions. A query: callers make it linearizable (ReadIndex) themselves.
   * Throws TW_BLOCKMAP_BAD_QUERY over FRAGMENT_CHECK_MAX refs.
   */
  async checkFragments(nodeId: string, refs: readonly FragmentRef[]): Promise<FragmentCheckResult> {
    this.#checkUsable();
    if (refs.length > FRAGMENT_CHECK_MAX) throw blockMapErrors.create('TW_BLOCKMAP_BAD_QUERY', `checkFragments takes at most ${FRAGMENT_CHECK_MAX} fragments, got ${refs.length}`);
    const liveness: FragmentLiveness[] = refs.map(() => 'unknown');
    const nodeIndex = this.#nodeIndexById.get(nodeId);
    const node = nodeIndex === undefined ? undefined : this.#nodes[nodeIndex];
    if (this.#cluster === null || node === undefined) return { liveness, nodeRegisteredAtMs: 0 };
    const asked: number[] = [];
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i]!;
      if (namespaceNameError(r.namespace) !== null || keyError(r.key) !== null || !Number.isInteger(r.index) || r.index < 0 || r.index > 255 || r.version < 0n) continue;
      // Namespaces are deleted only once they hold no record, current or superseded.
      if (!this.#namespaces.has(r.namespace)) liveness[i] = 'dead';
      else asked.push(i);
    }
    const current = await this.#store.getMany(asked.map((i) => blockKey(refs[i]!.namespace, refs[i]!.key)));
    for (let j = 0; j < asked.length; j++) {
      const i = asked[j]!;
      const ref = refs[i]!;
      try {
        const v = current[j];
        const rec = v === undefined ? undefined : this.#decodeBlock(ref.namespace, ref.key, v);
        if (rec !== undefined && rec.writeVersion === ref.version) {
          liveness[i] = rec.fragmentNodes[ref.index] === nodeId ? 'live' : 'dead';
          continue;
        }
        liveness[i] = await this.#supersededLiveness(nodeId, ref);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        liveness[i] = 'unknown';
      }
    }
    return { liveness, nodeRegisteredAtMs: node.registeredAtMs };
  }

  /** Liveness of a ref among its key's superseded versions (garbage table, keyed by map version). */
  async #supersededLiveness(nodeId: string, ref: FragmentRef): Promise<FragmentLiveness> {
    // `03 nsLen ns key` also prefixes longer keys: only entries exactly 8 bytes longer are this key's.
    const prefix = garbageKey(ref.namespace, ref.key, 0).subarray(0, 2 + ref.namespace.length + ref.key.byteLength);
    let scanned = 0;
    for await (const [k, v] of kvEntries(this.#store, prefixRange(prefix, FRAGMENT_CHECK_GARBAGE_SCAN_MAX + 1), 64)) {
      if (++scanned > FRAGMENT_CHECK_GARBAGE_SCAN_MAX) return 'unknown';
      if (k.byteLength !== prefix.byteLength + 8) continue;
      const rec = this.#decodeBlock(ref.namespace, ref.key, v);
      if (rec.writeVersion === ref.version) return rec.fragmentNodes[ref.index] === nodeId ? 'live' : 'dead';
    }
    return 'dead';
  }

  #queryNamespace(name: string): NamespaceInfo {
    const bad = namespaceNameError(name);
    if (bad !== null) throw blockMapErrors.create('TW_BLOCKMAP_BAD_QUERY', bad.message);
    const ns = this.#namespaces.get(name);
    if (ns === undefined) throw blockMapErrors.create('TW_BLOCKMAP_UNKNOWN_NAMESPACE', `namespace ${name} does not exist`, { details: { namespace: name } });
    return ns;
  }

  namespace(name: string): NamespaceInfo | undefined {
    this.#checkUsable();
    return this.#namespaces.get(name);
  }

  /** Every namespace, by name. */
  namespaces(): NamespaceInfo[] {
    this.#checkUsable();
    return [...this.#namespaces.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Bytes and blocks by namespace (for /metrics and quotas). */
  namespaceStats(): NamespaceStats[] {
    return this.namespaces().map((n) => ({
      namespace: n.name,
      usageBytes: n.usageBytes,
      blockCount: n.blockCount,
      garbageBytes: n.garbageBytes,
      garbageCount: n.garbageCount,
      quotaBytes: n.quotaBytes,
    }));
  }

  /** The cluster map (nodes by id), or null before InitCluster. */
  clusterMap(): ClusterMapView | null {
    this.#checkUsable();
    if (this.#cluster === null) return null;
    const nodes = [...this.#nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { epoch: this.#cluster.epoch, rules: this.#cluster.rules, nodes };
  }

  /** The PG map, or null until enough nodes are up to place a stripe. Its epoch may trail the cluster map's while too few are. */
  pgMap(): PgMap | null {
    this.#checkUsable();
    return this.#pgMap;
  }

  /** xxh64 over every entry of the state, in key order: equal states give equal digests. */
  async stateDigest(): Promise<bigint> {
    this.#checkUsable();
    const parts: Uint8Array[] = [];
    for await (const [k, v] of kvEntries(this.#store, { lt: tagKey(TAG_END) }, 1024)) {
      parts.push(new Writer(8).u32(k.byteLength).u32(v.byteLength).finish(), k, v);
    }
    return checksum64Parts(parts);
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * The whole state as chunks of about `maxChunkBytes` (a chunk always holds at least one entry,
   * so one larger entry, like the PG map, makes a larger chunk). Reads one store iterator, created
   * now, so the chunks are a consistent view even while applies continue; call it between
   * applies (from the apply loop) so that `appliedIndex` names the state it captures. Every chunk
   * carries that index, its sequence number, a last flag and an xxh64 checksum.
   */
  snapshotChunks(maxChunkBytes: number): SnapshotStream {
    this.#checkUsable();
    if (!Number.isInteger(maxChunkBytes) || maxChunkBytes < SNAPSHOT_CHUNK_MIN_BYTES || maxChunkBytes > SNAPSHOT_CHUNK_MAX_BYTES) {
      throw blockMapErrors.create('TW_BLOCKMAP_BAD_QUERY', `maxChunkBytes must be ${SNAPSHOT_CHUNK_MIN_BYTES}..${SNAPSHOT_CHUNK_MAX_BYTES}`);
    }
    const it = this.#store.iterator({ lt: tagKey(TAG_END) });
    const appliedIndex = this.#applied;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        let seq = 0;
        let entries: (readonly [Uint8Array, Uint8Array])[] = [];
        let bytes = 0;
        // The chunks carry the applied index of the view itself (its first entry, the smallest key).
        let page = await it.next(256);
        const first = page[0];
        const index = first !== undefined && compareBytes(first[0], META_APPLIED) === 0 ? decodeU64(first[1]) : 0;
        for (; page.length > 0; page = await it.next(256)) {
          for (const e of page) {
            const size = e[0].byteLength + e[1].byteLength + 8;
            if (entries.length > 0 && bytes + size > maxChunkBytes) {
              yield encodeChunk(seq++, index, false, entries);
              entries = [];
              bytes = 0;
            }
            entries.push(e);
            bytes += size;
          }
        }
        yield encodeChunk(seq, index, true, entries);
      } finally {
        await it.close();
      }
    }
    const gen = chunks();
    return { appliedIndex, [Symbol.asyncIterator]: () => gen };
  }

  /**
   * Replaces the whole state with a snapshot's chunks. Crash story: a marker key is written
   * first, then the old state is cleared, then each chunk is written as one batch; the last
   * chunk's batch also removes the marker. A crash (or a bad chunk) in between leaves the marker:
   * the block map then opens in a refusing state (every call throws
   * TW_BLOCKMAP_RESTORE_INCOMPLETE) until a restore completes, so a half-restored map is never
   * served. Returns the snapshot's applied index.
   */
  restoreFromChunks(chunks: AsyncIterable<Uint8Array>, options: { signal?: AbortSignal } = {}): Promise<number> {
    return this.#serial(async () => {
      const s = this.#store;
      await s.write([{ type: 'put', key: META_RESTORING, value: new Uint8Array(1) }]);
      this.#broken = { code: 'TW_BLOCKMAP_RESTORE_INCOMPLETE', why: 'a snapshot restore is in progress or was interrupted' };
      await s.clear({ lt: META_RESTORING });
      await s.clear({ gt: META_RESTORING, lt: tagKey(TAG_END) });
      let expectSeq = 0;
      let index = -1;
      let done = false;
      for await (const bytes of chunks) {
        options.signal?.throwIfAborted();
        if (done) throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', 'chunk after the last chunk');
        const chunk = decodeChunk(bytes);
        if (chunk.seq !== expectSeq) throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', `chunk ${chunk.seq} where ${expectSeq} was expected`);
        if (index >= 0 && chunk.appliedIndex !== index) throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', 'chunks of different snapshots');
        index = chunk.appliedIndex;
        expectSeq++;
        const ops: KvOp[] = [];
        for (const [k, v] of chunk.entries) {
          if (k.byteLength === 0 || k[0]! >= TAG_END || compareBytes(k, META_RESTORING) === 0) {
            throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', 'snapshot entry outside the block map keyspace');
          }
          ops.push({ type: 'put', key: k, value: v });
        }
        if (chunk.last) {
          ops.push({ type: 'del', key: META_RESTORING });
          done = true;
        }
        await s.write(ops);
      }
      if (!done) throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', 'the snapshot ended before its last chunk');
      await this.reload();
      if (this.#applied !== index) {
        throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', `the snapshot's chunks name applied index ${index}, its state holds ${this.#applied}`);
      }
      return index;
    });
  }
}

function isExpired(rec: BlockRecord, nowMs: number): boolean {
  return !rec.pinned && rec.ttlMs > 0 && Math.max(rec.createdAtMs, rec.lastAccessMs) + rec.ttlMs <= nowMs;
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) throw blockMapErrors.create('TW_BLOCKMAP_BAD_QUERY', `limit must be 1..${LIST_LIMIT_MAX}`);
  return limit;
}

const unknownNamespace = (name: string): CommandError => errorResult('TW_BLOCKMAP_UNKNOWN_NAMESPACE', `namespace ${name} does not exist`, { namespace: name });
const unknownNode = (id: string): CommandError => errorResult('TW_BLOCKMAP_UNKNOWN_NODE', `node ${JSON.stringify(id.slice(0, 80))} is not in the cluster map`, { nodeId: id.slice(0, 80) });
const removed = (id: string): CommandError => errorResult('TW_BLOCKMAP_NODE_REMOVED', `node ${id} is out; ids are never reused`, { nodeId: id });
const notInitialized = (): CommandError => errorResult('TW_BLOCKMAP_CLUSTER_NOT_INITIALIZED', 'the cluster is not initialised (InitCluster)');
const tooLarge = (n: number): CommandError => errorResult('TW_BLOCKMAP_BATCH_TOO_LARGE', `${n} entries in one command; at most ${BATCH_RECORDS_MAX}`, { count: n });
