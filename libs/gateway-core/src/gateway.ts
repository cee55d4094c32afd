import {
  type FragmentHeader,
  type KvLayout,
  type Redundancy,
  checksum64,
  formatRedundancy,
  fragmentCount,
  keyHash64,

  validateKey,
  validateKvLayout,
  validateNamespace,
} from '@tw/block-format';
import { TwError, isTwError } from '@tw/errors';
import { type PgMap, nextCandidates, pgNodes, pgOf } from '@tw/placement';
import type { BlockCommitMsg } from '@tw/rpc';
import type { Transport } from '@tw/transport';
import { BadFragmentReporter } from './bad-fragment-reporter.js';
import { BufferPool } from './buffer-pool.js';
import { ByteBudget, aborted } from './byte-budget.js';
import { type ClusterView, clusterViewOf, decodePgMapJsonBytes } from './cluster-view.js';
import { CommitBatcher } from './commit-batcher.js';
import type { GatewayCoordinator } from './coordinator.js';
import { DramTier, type TierEntry } from './dram-tier.js';
import { gatewayErrors } from './errors.js';
import {
  BAD_FRAGMENT_QUEUE_MAX_DEFAULT,
  BAD_FRAGMENT_REPORT_INTERVAL_MS_DEFAULT,
  BLOCK_BYTES_MAX,
  BUFFER_POOL_BYTES_MAX_DEFAULT,
  COMMIT_BATCH_CAP,
  COMMIT_BATCH_MAX_DEFAULT,
  COMMIT_WINDOW_MS_DEFAULT,
  DRAM_LEASE_MS_DEFAULT,
  DRAM_TIER_BYTES_CAP,
  DRAM_TIER_BYTES_DEFAULT,
  FLUSH_INFLIGHT_MAX_DEFAULT,
  FRAGMENT_TIMEOUT_MS_DEFAULT,
  HEDGE_MS_DEFAULT,
  INFLIGHT_BYTES_MAX_DEFAULT,
  LOOKUP_BATCH_KEYS_MAX,
  LOOKUP_KEYS_MAX,
  MGET_CONCURRENCY,
  READ_REPAIR_INFLIGHT_MAX,
  PREFETCH_INFLIGHT_MAX,
  RECORD_CACHE_ENTRIES_DEFAULT,
  RECORD_LEASE_MS_DEFAULT,
  WRITE_SLOT_ATTEMPTS_MAX,
} from './limits.js';
import { LookupBatcher, lookupPacked } from './lookup-batcher.js';
import { PeerPool } from './peer-pool.js';
import { type BadFragment, type BlockParts, type ReadContext, codecFor, readBlock, readBlockParts } from './read-path.js';
import { type GatewayRecord, RecordCache, entryKey, recordsOfLookup } from './record.js';
import { VersionClock } from './version-clock.js';

export interface GatewayOptions {
  /** Names this gateway in commit request ids (with a random per-instance tag, so restarts never reuse ids). */
  readonly gatewayId: string;
  /** Bytes of the DRAM tier (accepted + cached blocks). Default 1 GiB. */
  readonly dramTierBytes?: number;
  /** Fragment and parity bytes in flight, reads and writes together. Default 512 MiB. */
  readonly inflightBytesMax?: number;
  /** Blocks encoded / written / committed at once. Default 16. */
  readonly flushInflightMax?: number;
  /** Redundancy of namespaces not listed in `namespaces`. Default ec:4+2. */
  readonly defaultRedundancy?: Redundancy;
  /** Per-namespace policy (until the gateway reads namespaces from the coordinators). */
  readonly namespaces?: Readonly<Record<string, { readonly redundancy?: Redundancy }>>;
  /** Commit batching: window after the first commit (ms, default 2) and batch size (default 256). */
  readonly commitWindowMs?: number;
  readonly commitBatchMax?: number;
  /** Lookup cache: entries (default 65,536) and lease (ms, default 2,000; 0 disables). */
  readonly recordCacheEntries?: number;
  readonly recordLeaseMs?: number;
  /** How long a committed DRAM-tier entry is served before its version is re-checked (ms). */
  readonly dramLeaseMs?: number;
  /** Hedging floor in ms (default 50): parity reads start after max(hedgeMs, 3 x recent fragment latency). */
  readonly hedgeMs?: number;
  /** Deadline of one fragment read or write (ms, default 10,000). */
  readonly fragmentTimeoutMs?: number;
  /** How long a node is avoided after a connection failure (ms, default 1,000). */
  readonly suspectMs?: number;
  /** How long calls wait for the first cluster map before failing TW_GATEWAY_NO_PLACEMENT (ms, default 5,000). */
  readonly clusterMapWaitMs?: number;
  /** Free fragment buffers kept for reuse (bytes, default 256 MiB). */
  readonly bufferPoolBytes?: number;
  /** Decodes ClusterMap.pg_map; default: UTF-8 JSON of placement's pgMapToJson. */
  readonly decodePgMap?: (bytes: Uint8Array) => PgMap | null;
  /** Bad fragments the read path meets are reported to the coordinators at most this often (ms, default 1,000). */
  readonly badFragmentReportIntervalMs?: number;
  /** Distinct bad fragments queued for reporting (default 4,096); past it sightings are dropped and counted. */
  readonly badFragmentQueueMax?: number;
  /** Rewrite missing / corrupt fragments to their node after a degraded read reassembled the block (default true; best effort, bounded). */
  readonly readRepair?: boolean;
}

/** Observability hooks: plain callbacks, all optional, called synchronously (keep them cheap). */
export interface GatewayHooks {
  /** A fragment that was missing, corrupt, unreachable or inconsistent on a read (for repair). */
  readonly onBadFragment?: (f: BadFragment) => void;
  /** An async put that failed after it was acknowledged (its DRAM copy is dropped). */
  readonly onWriteFailed?: (namespace: string, key: Buffer, error: TwError) => void;
  /** One finished operation with its latency and payload bytes. */
  readonly onOp?: (op: 'put' | 'get' | 'lookup' | 'delete', latencyMs: number, bytes: number, outcome: 'ok' | 'miss' | 'error') => void;
}

export interface GatewayComponents {
  /** Data-plane transport the gateway dials storage nodes with (the caller owns and closes it). */
  readonly transport: Transport;
  readonly coordinator: GatewayCoordinator;
  /** Wall clock in ms (default Date.now): versions, leases, hedging. */
  readonly nowMs?: () => number;
  /** Uniform [0, 1) (default Math.random): the version writer tag. */
  readonly random?: () => number;
  readonly hooks?: GatewayHooks;
}

export interface PutOptions {
  /** `async` (default): resolve after the DRAM accept; `sync`: after the commit. */
  readonly mode?: 'async' | 'sync';
  readonly layout?: KvLayout;
  /** 0 or absent: the namespace default. */
  readonly ttlMs?: number;
  readonly pinned?: boolean;
  /** Aborts waiting for DRAM room (and, in sync mode, waiting for the commit: the write itself goes on). */
  readonly signal?: AbortSignal;
}

export type CommitOutcome = { readonly ok: true; readonly version: bigint } | { readonly ok: false; readonly error: TwError };

export interface PutResult {
  readonly version: bigint;
  /** Settles (never rejects) when the block is committed, failed, or was superseded before its commit. */
  readonly committed: Promise<CommitOutcome>;
}

export interface GetOptions {
  /** Destination of at least the block's size: the returned Buffer is then a view of it. */
  readonly into?: Buffer;
  readonly signal?: AbortSignal;
}

export interface LookupOptions {
  /** Start reading the hit blocks into the DRAM tier (best effort, never blocks, bounded). */
  readonly prefetch?: boolean;
  readonly signal?: AbortSignal;
}

export interface LookupResult {
  /** How many leading keys this gateway can serve: in its DRAM tier, or committed. */
  readonly hits: number;
}

export interface GatewayStats {
  putBlocks: number;
  putBytes: number;
  getBlocks: number;
  getBytes: number;
  getMisses: number;
  dramHits: number;
  dramMisses: number;
  recordCacheHits: number;
  lookupCalls: number;
  lookupKeys: number;
  commitBatches: number;
  commitBlocks: number;
  commitFailures: number;
  /** Blocks whose fragments were written but never committed (failed or superseded): orphans. */
  orphanedBlocks: number;
  degradedReads: number;
  hedgedReads: number;
  badFragments: number;
  /** Bad fragments reported to the coordinators, dropped (queue full), lost with a failed call. */
  badFragmentReportsSent: number;
  badFragmentReportsDropped: number;
  badFragmentReportsFailed: number;
  /** Read repair: fragments rewritten, failed writes, repairs skipped (node not up, or too many in flight). */
  readRepairs: number;
  readRepairFailures: number;
  readRepairsSkipped: number;
  prefetches: number;
  dramTierBytes: number;
  dramTierEntries: number;
  dramEvictions: number;
  inflightBytes: number;
  clusterEpoch: number;
}

/** The gateway data path (see createGateway). */
export interface Gateway {
  /**
   * Stores `value` under (namespace, key). The value's bytes are copied into the DRAM tier
   * before this resolves: the caller may reuse its buffers at once. Waits (abortably) while the
   * tier is full. Throws TW_GATEWAY_BAD_INPUT, TW_GATEWAY_VALUE_TOO_LARGE, TW_GATEWAY_ABORTED,
   * TW_GATEWAY_CLOSED; in `sync` mode also the write / commit errors.
   */
  put(namespace: string, key: Uint8Array, value: Uint8Array | readonly Uint8Array[], options?: PutOptions): Promise<PutResult>;
  /**
   * The value of (namespace, key), or undefined when no committed (or locally accepted) version
   * exists. Without `into` the Buffer may be the DRAM tier's own memory: treat it as read-only.
   * Throws TW_GATEWAY_BLOCK_UNAVAILABLE (more than m fragments unreadable),
   * TW_GATEWAY_BLOCK_CORRUPT, TW_GATEWAY_LOOKUP_FAILED, TW_GATEWAY_ABORTED.
   */
  get(namespace: string, key: Uint8Array, options?: GetOptions): Promise<Buffer | undefined>;
  /** Many gets (bounded concurrency, lookups batched); a failed block rejects the whole call. */
  /**
   * Like get, without copies: a DRAM-tier hit is the tier's own buffer (read-only); a cold read is
   * the k verified data fragments in pooled buffers (their concatenation is the value). The caller
   * must call `release()` once it has written the parts out; until then the buffers stay its own.
   */
  getParts(namespace: string, key: Uint8Array, options?: { signal?: AbortSignal }): Promise<BlockParts | undefined>;
  mget(namespace: string, keys: readonly Uint8Array[], options?: { signal?: AbortSignal }): Promise<(Buffer | undefined)[]>;
  /** How many leading keys are served (DRAM tier or committed); one coordinator call per 4,096 keys. */
  lookupPrefix(namespace: string, keys: readonly Uint8Array[], options?: LookupOptions): Promise<LookupResult>;
  /** Deletes the key (its DRAM copy and its committed record); true when something was deleted. */
  delete(namespace: string, key: Uint8Array, options?: { signal?: AbortSignal }): Promise<boolean>;
  /** Resolves once the first cluster map arrived. */
  ready(signal?: AbortSignal): Promise<void>;
  stats(): GatewayStats;
  /** Stops accepting, waits for flushes in flight (bounded by the fragment deadline), closes peers. */
  close(): Promise<void>;
}

const U32 = 0x1_0000_0000;

/**
 * Creates the gateway data path (ARCHITECTURE.md section 4): a bounded DRAM tier, erasure coding,
 * parallel fragment writes to the nodes the PG map names, batched commits, batched and cached
 * lookups, hedged and verified reads with parity reconstruction. Follows the coordinators'
 * cluster map (watchClusterMap) for node addresses and the PG map.
 */
export function createGateway(options: GatewayOptions, components: GatewayComponents): Gateway {
  return new GatewayImpl(options, components);
}

class GatewayImpl implements Gateway {
  readonly #nowMs: () => number;
  readonly #hooks: GatewayHooks;
  readonly #coordinator: GatewayCoordinator;
  readonly #tier: DramTier;
  readonly #inflight: ByteBudget;
  readonly #flushSlots: ByteBudget;
  readonly #peers: PeerPool;
  readonly #pool: BufferPool;
  readonly #records: RecordCache;
  readonly #commits: CommitBatcher;
  readonly #lookups: LookupBatcher;
  readonly #versions: VersionClock;
  readonly #defaultRedundancy: Redundancy;
  readonly #namespaces: Readonly<Record<string, { readonly redundancy?: Redundancy }>>;
  readonly #dramLeaseMs: number;
  readonly #hedgeFloorMs: number;
  readonly #fragmentTimeoutMs: number;
  readonly #mapWaitMs: number;
  readonly #decodePgMap: (bytes: Uint8Array) => PgMap | null;
  readonly #flushes = new Set<Promise<unknown>>();
  readonly #stopWatch: () => void;
  #view: ClusterView | undefined;
  #viewWaiters: (() => void)[] = [];
  #closed = false;
  #prefetching = 0;
  #fragmentLatencyMs = 0;
  readonly #stats: GatewayStats = {
    putBlocks: 0,
    putBytes: 0,
    getBlocks: 0,
    getBytes: 0,
    getMisses: 0,
    dramHits: 0,
    dramMisses: 0,
    recordCacheHits: 0,
    lookupCalls: 0,
    lookupKeys: 0,
    commitBatches: 0,
    commitBlocks: 0,
    commitFailures: 0,
    orphanedBlocks: 0,
    degradedReads: 0,
    hedgedReads: 0,
    badFragments: 0,
    badFragmentReportsSent: 0,
    badFragmentReportsDropped: 0,
    badFragmentReportsFailed: 0,
    readRepairs: 0,
    readRepairFailures: 0,
    readRepairsSkipped: 0,
    prefetches: 0,
    dramTierBytes: 0,
    dramTierEntries: 0,
    dramEvictions: 0,
    inflightBytes: 0,
    clusterEpoch: 0,
  };
  readonly #readCtx: ReadContext;
  readonly #reporter: BadFragmentReporter;
  #repairsInflight = 0;

  constructor(options: GatewayOptions, components: GatewayComponents) {
    if (typeof options.gatewayId !== 'string' || options.gatewayId.length === 0 || options.gatewayId.length > 128) badInput('gatewayId must be 1-128 characters');
    this.#nowMs = components.nowMs ?? Date.now;
    this.#hooks = components.hooks ?? {};
    this.#coordinator = components.coordinator;
    const tierBytes = intOption('dramTierBytes', options.dramTierBytes, DRAM_TIER_BYTES_DEFAULT, 1, DRAM_TIER_BYTES_CAP);
    this.#tier = new DramTier(tierBytes);
    this.#inflight = new ByteBudget(intOption('inflightBytesMax', options.inflightBytesMax, INFLIGHT_BYTES_MAX_DEFAULT, 1, DRAM_TIER_BYTES_CAP));
    this.#flushSlots = new ByteBudget(intOption('flushInflightMax', options.flushInflightMax, FLUSH_INFLIGHT_MAX_DEFAULT, 1, 1024));
    this.#fragmentTimeoutMs = intOption('fragmentTimeoutMs', options.fragmentTimeoutMs, FRAGMENT_TIMEOUT_MS_DEFAULT, 1, 600_000);
    this.#peers = new PeerPool(components.transport, this.#nowMs, intOption('suspectMs', options.suspectMs, 1000, 0, 600_000));
    this.#pool = new BufferPool(intOption('bufferPoolBytes', options.bufferPoolBytes, BUFFER_POOL_BYTES_MAX_DEFAULT, 0, DRAM_TIER_BYTES_CAP));
    this.#records = new RecordCache(
      intOption('recordCacheEntries', options.recordCacheEntries, RECORD_CACHE_ENTRIES_DEFAULT, 0, 10_000_000),
      intOption('recordLeaseMs', options.recordLeaseMs, RECORD_LEASE_MS_DEFAULT, 0, 3_600_000),
      this.#nowMs,
    );
    this.#dramLeaseMs = intOption('dramLeaseMs', options.dramLeaseMs, DRAM_LEASE_MS_DEFAULT, 0, 3_600_000);
    this.#hedgeFloorMs = intOption('hedgeMs', options.hedgeMs, HEDGE_MS_DEFAULT, 0, 600_000);
    this.#mapWaitMs = intOption('clusterMapWaitMs', options.clusterMapWaitMs, 5000, 0, 600_000);
    const writerTag = Math.floor((components.random ?? Math.random)() * U32);
    this.#commits = new CommitBatcher(
      this.#coordinator,
      // Request ids must never repeat across restarts (the coordinators answer a repeated
      // (client, seq) from memory): the id carries this instance's random tag.
      `${options.gatewayId}/${writerTag.toString(16)}`,
      intOption('commitWindowMs', options.commitWindowMs, COMMIT_WINDOW_MS_DEFAULT, 0, 10_000),
      intOption('commitBatchMax', options.commitBatchMax, COMMIT_BATCH_MAX_DEFAULT, 1, COMMIT_BATCH_CAP),
      (n) => {
        this.#stats.commitBatches++;
        this.#stats.commitBlocks += n;
      },
    );
    this.#lookups = new LookupBatcher(this.#coordinator, (n) => {
      this.#stats.lookupCalls++;
      this.#stats.lookupKeys += n;
    });
    this.#versions = new VersionClock(this.#nowMs, writerTag);
    this.#defaultRedundancy = options.defaultRedundancy ?? { kind: 'ec', k: 4, m: 2 };
    codecFor(this.#defaultRedundancy);
    this.#namespaces = options.namespaces ?? {};
    this.#decodePgMap = options.decodePgMap ?? decodePgMapJsonBytes;
    this.#reporter = new BadFragmentReporter(
      {
        gatewayId: options.gatewayId,
        queueMax: intOption('badFragmentQueueMax', options.badFragmentQueueMax, BAD_FRAGMENT_QUEUE_MAX_DEFAULT, 1, 1_000_000),
        intervalMs: intOption('badFragmentReportIntervalMs', options.badFragmentReportIntervalMs, BAD_FRAGMENT_REPORT_INTERVAL_MS_DEFAULT, 0, 3_600_000),
      },
      (request, signal) => this.#coordinator.call('reportBadFragments', request, { signal }),
      this.#nowMs,
    );
    this.#readCtx = {
      peers: this.#peers,
      addressOf: (id) => this.#view?.addresses.get(id),
      pool: this.#pool,
      inflight: this.#inflight,
      hedgeMs: () => Math.max(this.#hedgeFloorMs, 3 * this.#fragmentLatencyMs),
      fragmentTimeoutMs: this.#fragmentTimeoutMs,
      onBadFragment: (f) => {
        this.#stats.badFragments++;
        this.#reporter.report(f);
        this.#hooks.onBadFragment?.(f);
      },
      onFragmentRead: (ms) => {
        this.#fragmentLatencyMs = this.#fragmentLatencyMs === 0 ? ms : 0.9 * this.#fragmentLatencyMs + 0.1 * ms;
      },
      onHedge: () => {
        this.#stats.hedgedReads++;
      },
      nowMs: this.#nowMs,
      ...(options.readRepair === false
        ? {}
        : {
            readRepair: {
              tryAcquire: () => {
                if (this.#closed || this.#repairsInflight >= READ_REPAIR_INFLIGHT_MAX) {
                  this.#stats.readRepairsSkipped++;
                  return false;
                }
                this.#repairsInflight++;
                return true;
              },
              release: () => {
                this.#repairsInflight--;
              },
              write: (record, index, bytes) => this.#repairFragment(record, index, bytes),
            },
          }),
    };
    this.#stopWatch = this.#coordinator.watchClusterMap(
      (msg) => {
        try {
          const view = clusterViewOf(msg, this.#decodePgMap);
          if (this.#view !== undefined && view.epoch < this.#view.epoch) return;
          this.#view = view;
          this.#stats.clusterEpoch = view.epoch;
          this.#peers.retain(new Set(view.addresses.values()));
          for (const w of this.#viewWaiters.splice(0)) w();
        } catch {
          // A map that does not decode is ignored; the previous one stays in use.
        }
      },
      () => undefined,
    );
  }

  // ------------------------------------------------------------------ public API

  async ready(signal?: AbortSignal): Promise<void> {
    await this.#awaitView(signal);
  }

  async put(namespace: string, key: Uint8Array, value: Uint8Array | readonly Uint8Array[], options: PutOptions = {}): Promise<PutResult> {
    const started = this.#nowMs();
    this.#checkOpen();
    const keyBuf = checkNsKey(namespace, key);
    const parts = value instanceof Uint8Array ? [value] : Array.isArray(value) ? (value as readonly Uint8Array[]) : badInput('value must be a Uint8Array or an array of them');
    let size = 0;
    for (const p of parts) {
      if (!(p instanceof Uint8Array)) badInput('value parts must be Uint8Arrays');
      size += p.byteLength;
    }
    const mode = options.mode ?? 'async';
    if (mode !== 'async' && mode !== 'sync') badInput(`mode must be async or sync, got ${String(mode)}`);
    if (options.layout !== undefined) wrapInput(() => validateKvLayout(options.layout!));
    if (options.ttlMs !== undefined && (!Number.isSafeInteger(options.ttlMs) || options.ttlMs < 0)) badInput('ttlMs must be a non-negative integer');
    const redundancy = this.#redundancyOf(namespace);
    const codec = codecFor(redundancy);
    const shard = codec.fragmentBytes(size);
    const charged = redundancy.kind === 'ec' ? shard * redundancy.k : size;
    if (size > BLOCK_BYTES_MAX || charged > this.#tier.budget.capacityBytes) {
      throw gatewayErrors.create('TW_GATEWAY_VALUE_TOO_LARGE', `a value of ${size} bytes does not fit the ${this.#tier.budget.capacityBytes}-byte DRAM tier (or exceeds ${BLOCK_BYTES_MAX})`, {
        details: { sizeBytes: size },
      });
    }
    await this.#tier.budget.acquire(charged, options.signal);
    if (this.#closed) {
      this.#tier.budget.release(charged);
      throw gatewayErrors.create('TW_GATEWAY_CLOSED', 'gateway is closed');
    }
    // The tier's copy: padded to k fragments so the codec encodes it in place (no second copy).
    const buffer = Buffer.allocUnsafeSlow(charged);
    let at = 0;
    for (const p of parts) {
      buffer.set(p, at);
      at += p.byteLength;
    }
    buffer.fill(0, size);
    const payload = buffer.subarray(0, size);
    const entry: TierEntry = {
      namespace,
      key: keyBuf,
      version: this.#versions.next(),
      payload,
      buffer,
      checksum: checksum64(payload),
      state: 'pending',
      superseded: false,
      validUntilMs: 0,
      releaseOnSettle: false,
    };
    const k = entryKey(namespace, keyBuf);
    this.#tier.insert(k, entry);
    this.#records.delete(k);
    this.#stats.putBlocks++;
    this.#stats.putBytes += size;
    const committed = this.#flush(k, entry, redundancy, options);
    entry.settled = committed;
    const tracked = committed.finally(() => this.#flushes.delete(tracked));
    this.#flushes.add(tracked);
    if (mode === 'sync') {
      const outcome = options.signal === undefined ? await committed : await raceAbort(committed, options.signal);
      this.#hooks.onOp?.('put', this.#nowMs() - started, size, outcome.ok ? 'ok' : 'error');
      if (!outcome.ok) throw outcome.error;
    } else {
      this.#hooks.onOp?.('put', this.#nowMs() - started, size, 'ok');
    }
    return { version: entry.version, committed };
  }

  async get(namespace: string, key: Uint8Array, options: GetOptions = {}): Promise<Buffer | undefined> {
    // Without asParts the value is one part: the tier's buffer, `into`, or a fresh buffer.
    return (await this.#countedGet(namespace, key, options.into, options.signal, false))?.parts[0];
  }

  async getParts(namespace: string, key: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<BlockParts | undefined> {
    return this.#countedGet(namespace, key, undefined, options.signal, true);
  }

  /** #get with input checks, stats and the op hook. */
  async #countedGet(namespace: string, key: Uint8Array, into: Buffer | undefined, signal: AbortSignal | undefined, asParts: boolean): Promise<BlockParts | undefined> {
    const started = this.#nowMs();
    this.#checkOpen();
    const keyBuf = checkNsKey(namespace, key);
    if (signal?.aborted) throw aborted(signal);
    try {
      const out = await this.#get(namespace, keyBuf, into, signal, asParts);
      if (out === undefined) this.#stats.getMisses++;
      else {
        this.#stats.getBlocks++;
        this.#stats.getBytes += out.sizeBytes;
      }
      this.#hooks.onOp?.('get', this.#nowMs() - started, out?.sizeBytes ?? 0, out === undefined ? 'miss' : 'ok');
      return out;
    } catch (err) {
      this.#hooks.onOp?.('get', this.#nowMs() - started, 0, 'error');
      throw err;
    }
  }

  async mget(namespace: string, keys: readonly Uint8Array[], options: { signal?: AbortSignal } = {}): Promise<(Buffer | undefined)[]> {
    this.#checkOpen();
    if (!Array.isArray(keys) || keys.length > LOOKUP_KEYS_MAX) badInput(`mget takes an array of at most ${LOOKUP_KEYS_MAX} keys`);
    const out: (Buffer | undefined)[] = new Array<Buffer | undefined>(keys.length).fill(undefined);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const i = next++;
        out[i] = await this.get(namespace, keys[i]!, options.signal === undefined ? {} : { signal: options.signal });
      }
    };
    await Promise.all(Array.from({ length: Math.min(MGET_CONCURRENCY, keys.length) }, worker));
    return out;
  }

  async lookupPrefix(namespace: string, keys: readonly Uint8Array[], options: LookupOptions = {}): Promise<LookupResult> {
    const started = this.#nowMs();
    this.#checkOpen();
    if (!Array.isArray(keys) || keys.length > LOOKUP_KEYS_MAX) badInput(`lookupPrefix takes an array of at most ${LOOKUP_KEYS_MAX} keys`);
    const keyBufs = keys.map((k) => checkNsKey(namespace, k));
    const signal = options.signal;
    let hits = 0;
    const toPrefetch: GatewayRecord[] = [];
    // Bounded: every round advances `hits` by at least one or returns.
    while (hits < keyBufs.length) {
      if (signal?.aborted) throw aborted(signal);
      // Keys this gateway can vouch for without a call: its DRAM tier and leased records.
      const k0 = entryKey(namespace, keyBufs[hits]!);
      const local = this.#tier.peek(k0);
      if (local !== undefined && (local.state === 'pending' || local.validUntilMs > this.#nowMs())) {
        this.#stats.dramHits++;
        hits++;
        continue;
      }
      const cached = this.#records.get(k0);
      if (cached !== undefined) {
        this.#stats.recordCacheHits++;
        if (options.prefetch === true) toPrefetch.push(cached);
        hits++;
        continue;
      }
      const batch = keyBufs.slice(hits, hits + LOOKUP_BATCH_KEYS_MAX);
      this.#stats.lookupCalls++;
      this.#stats.lookupKeys += batch.length;
      let res;
      try {
        res = await lookupPacked(this.#coordinator, namespace, batch, signal === undefined ? {} : { signal });
      } catch (err) {
        if (signal?.aborted) throw aborted(signal);
        throw gatewayErrors.create('TW_GATEWAY_LOOKUP_FAILED', `lookup failed: ${(err as Error).message}`, { cause: err, details: isTwError(err) ? { code: err.code } : {} });
      }
      const records = recordsOfLookup(namespace, res);
      const h = Math.min(res.hits, batch.length, records.length);
      for (let i = 0; i < h; i++) {
        const rec = records[i]!;
        this.#records.set(entryKey(namespace, batch[i]!), rec);
        if (options.prefetch === true) toPrefetch.push(rec);
      }
      hits += h;
      // A miss the coordinators report may still be a block this gateway accepted (not yet committed).
      if (h < batch.length && this.#tier.peek(entryKey(namespace, batch[h]!))?.state !== 'pending') break;
    }
    for (const rec of toPrefetch) this.#prefetch(rec);
    this.#hooks.onOp?.('lookup', this.#nowMs() - started, 0, 'ok');
    return { hits };
  }

  async delete(namespace: string, key: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const started = this.#nowMs();
    this.#checkOpen();
    const keyBuf = checkNsKey(namespace, key);
    const k = entryKey(namespace, keyBuf);
    const local = this.#tier.remove(k);
    this.#records.delete(k);
    // A commit of this key already on its way could land after the delete and revive the key:
    // wait for it (bounded by the fragment deadline and the coordinator client's retries).
    if (local?.settled !== undefined) await (options.signal === undefined ? local.settled : raceAbort(local.settled, options.signal));
    const res = await this.#coordinator.call('deleteBlocks', { namespace, keys: [keyBuf], requestId: null, token: '' }, options.signal === undefined ? {} : { signal: options.signal });
    this.#hooks.onOp?.('delete', this.#nowMs() - started, 0, 'ok');
    return res.deleted > 0 || local !== undefined;
  }

  stats(): GatewayStats {
    return {
      ...this.#stats,
      dramTierBytes: this.#tier.usedBytes,
      dramTierEntries: this.#tier.size,
      dramEvictions: this.#tier.evictions,
      inflightBytes: this.#inflight.usedBytes,
      ...reporterStats(this.#reporter),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatch();
    const closedErr = gatewayErrors.create('TW_GATEWAY_CLOSED', 'gateway is closed');
    this.#tier.budget.failAll(closedErr);
    for (const w of this.#viewWaiters.splice(0)) w();
    await Promise.allSettled([...this.#flushes]);
    this.#commits.failAll(closedErr);
    await this.#reporter.close().catch(() => undefined);
    await this.#peers.close();
  }

  // ------------------------------------------------------------------ internals

  #checkOpen(): void {
    if (this.#closed) throw gatewayErrors.create('TW_GATEWAY_CLOSED', 'gateway is closed');
  }

  #redundancyOf(namespace: string): Redundancy {
    return this.#namespaces[namespace]?.redundancy ?? this.#defaultRedundancy;
  }

  async #awaitView(signal?: AbortSignal): Promise<ClusterView> {
    if (this.#view !== undefined) return this.#view;
    if (signal?.aborted) throw aborted(signal);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(done, this.#mapWaitMs);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(aborted(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      function done(): void {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }
      this.#viewWaiters.push(done);
    });
    if (this.#view === undefined) {
      throw gatewayErrors.create('TW_GATEWAY_NO_PLACEMENT', `no cluster map from the coordinators within ${this.#mapWaitMs} ms`);
    }
    return this.#view;
  }

  async #flush(k: string, entry: TierEntry, redundancy: Redundancy, options: PutOptions): Promise<CommitOutcome> {
    let wrote = false;
    try {
      await this.#flushSlots.acquire(1);
      try {
        if (entry.superseded) return { ok: false, error: gatewayErrors.create('TW_GATEWAY_COMMIT_FAILED', 'superseded by a newer put or a delete before it was written') };
        const fragmentNodes = await this.#writeFragments(entry, redundancy);
        wrote = true;
        if (entry.superseded) {
          this.#stats.orphanedBlocks++;
          return { ok: false, error: gatewayErrors.create('TW_GATEWAY_COMMIT_FAILED', 'superseded by a newer put or a delete before its commit') };
        }
        const block: BlockCommitMsg = {
          key: entry.key,
          sizeBytes: String(entry.payload.length),
          checksum: entry.checksum.toString(),
          redundancy: formatRedundancy(redundancy),
          fragmentNodes,
          layout: options.layout ?? null,
          ttlMs: String(options.ttlMs ?? 0),
          pinned: options.pinned ?? false,
          version: entry.version.toString(),
        };
        const result = await this.#commits.commit(entry.namespace, block);
        if (result.errorCode !== '') {
          throw gatewayErrors.create('TW_GATEWAY_COMMIT_FAILED', `the coordinators refused the commit: ${result.errorCode}: ${result.errorMessage}`, { details: { code: result.errorCode } });
        }
        this.#tier.markCommitted(entry, this.#nowMs() + this.#dramLeaseMs);
        return { ok: true, version: entry.version };
      } finally {
        this.#flushSlots.release(1);
      }
    } catch (err) {
      const e = isTwError(err) ? err : gatewayErrors.create('TW_GATEWAY_WRITE_FAILED', `write failed: ${(err as Error).message}`, { cause: err });
      if (wrote) this.#stats.orphanedBlocks++;
      this.#stats.commitFailures++;
      // Nobody else can serve it: drop the DRAM copy so this gateway stops claiming the key.
      this.#tier.removeIf(k, entry);
      this.#hooks.onWriteFailed?.(entry.namespace, entry.key, e);
      return { ok: false, error: e };
    } finally {
      this.#tier.flushSettled(entry);
    }
  }

  /** Writes all fragments in parallel; returns the node id of each. */
  async #writeFragments(entry: TierEntry, redundancy: Redundancy): Promise<string[]> {
    const view = await this.#awaitView();
    const pgMap = view.pgMap;
    const count = fragmentCount(redundancy);
    if (pgMap === null || pgMap.rules.width < count) {
      throw gatewayErrors.create('TW_GATEWAY_NO_PLACEMENT', pgMap === null ? 'the cluster has no PG map yet' : `the PG map places ${pgMap.rules.width} fragments; ${formatRedundancy(redundancy)} needs ${count}`);
    }
    const pg = pgOf(entry.namespace, entry.key, pgMap.rules.pgCount);
    const slots = pgNodes(pgMap, pg).slice(0, count);
    const codec = codecFor(redundancy);
    const shard = codec.fragmentBytes(entry.payload.length);
    const parityBytes = shard * (count - (redundancy.kind === 'ec' ? redundancy.k : count));
    await this.#inflight.acquire(parityBytes);
    try {
      const fragments = await codec.encode(redundancy.kind === 'ec' ? entry.buffer : entry.payload);
      const keyHash = keyHash64(entry.namespace, entry.key);
      const used = new Set(slots);
      return await Promise.all(
        fragments.map(async (bytes, i) => {
          const header: FragmentHeader = {
            redundancy,
            fragmentIndex: i,
            fragmentLength: bytes.length,
            keyHash,
            blockVersion: entry.version,
            payloadLength: entry.payload.length,
            fragmentChecksum: checksum64(bytes),
          };
          let node = slots[i]!;
          let last: unknown;
          for (let attempt = 0; attempt < WRITE_SLOT_ATTEMPTS_MAX; attempt++) {
            const address = view.addresses.get(node);
            try {
              if (address === undefined) throw gatewayErrors.create('TW_GATEWAY_NO_PLACEMENT', `node ${node} has no address`);
              const client = await this.#peers.client(address);
              await client.put({ namespace: entry.namespace, key: entry.key, version: entry.version, index: i }, header, bytes, AbortSignal.timeout(this.#fragmentTimeoutMs));
              return node;
            } catch (err) {
              last = err;
              if (address !== undefined) this.#peers.failed(address, err);
              // The slot's next candidate that no other fragment of this stripe uses.
              const next = nextCandidates(pgMap, pg, i, { exclude: used, limit: 1 })[0];
              if (next === undefined) break;
              used.add(next);
              node = next;
            }
          }
          throw gatewayErrors.create('TW_GATEWAY_WRITE_FAILED', `fragment ${i} of ${entry.namespace}/${entry.key.length}-byte key could not be persisted: ${(last as Error).message}`, { cause: last });
        }),
      );
    } finally {
      this.#inflight.release(parityBytes);
    }
  }

  /** Read repair: rewrites one rebuilt fragment to the node its record names, only if that node is up. */
  async #repairFragment(record: GatewayRecord, index: number, bytes: Buffer): Promise<void> {
    const nodeId = record.fragmentNodes[index]!;
    const address = this.#view?.addresses.get(nodeId);
    if (address === undefined || this.#view?.states.get(nodeId) !== 'up' || this.#peers.isSuspect(address)) {
      this.#stats.readRepairsSkipped++;
      return;
    }
    const header: FragmentHeader = {
      redundancy: record.redundancy,
      fragmentIndex: index,
      fragmentLength: bytes.length,
      keyHash: keyHash64(record.namespace, record.key),
      blockVersion: record.version,
      payloadLength: record.sizeBytes,
      fragmentChecksum: checksum64(bytes),
    };
    try {
      const client = await this.#peers.client(address);
      await client.put({ namespace: record.namespace, key: record.key, version: record.version, index }, header, bytes, AbortSignal.timeout(this.#fragmentTimeoutMs));
      this.#stats.readRepairs++;
    } catch {
      this.#stats.readRepairFailures++;
    }
  }

  /** With `asParts` (and no `into`), a cold read comes back as the verified data fragments (no assembly copy). */
  async #get(namespace: string, key: Buffer, into: Buffer | undefined, signal: AbortSignal | undefined, asParts = false): Promise<BlockParts | undefined> {
    const k = entryKey(namespace, key);
    const e = this.#tier.get(k);
    if (e !== undefined) {
      if (e.state === 'pending' || e.validUntilMs > this.#nowMs()) return whole(this.#serveTier(e, into));
      // A committed copy past its lease: still the current version?
      const rec = await this.#recordOf(namespace, key, k, signal);
      if (rec !== undefined && rec.version === e.version && !e.superseded) {
        e.validUntilMs = this.#nowMs() + this.#dramLeaseMs;
        return whole(this.#serveTier(e, into));
      }
      this.#tier.removeIf(k, e);
      if (rec === undefined) return undefined;
      return this.#readCold(rec, into, signal, asParts);
    }
    this.#stats.dramMisses++;
    const rec = await this.#recordOf(namespace, key, k, signal);
    if (rec === undefined) return undefined;
    // A put of this gateway may have landed while the lookup was out: prefer it.
    const late = this.#tier.peek(k);
    if (late !== undefined && late.version > rec.version) return whole(this.#serveTier(late, into));
    return this.#readCold(rec, into, signal, asParts);
  }

  #serveTier(e: TierEntry, into: Buffer | undefined): Buffer {
    this.#stats.dramHits++;
    if (into === undefined) return e.payload;
    if (into.length < e.payload.length) badInput(`into holds ${into.length} bytes; the value has ${e.payload.length}`);
    e.payload.copy(into);
    return into.subarray(0, e.payload.length);
  }

  async #recordOf(namespace: string, key: Buffer, k: string, signal: AbortSignal | undefined): Promise<GatewayRecord | undefined> {
    const cached = this.#records.get(k);
    if (cached !== undefined) {
      this.#stats.recordCacheHits++;
      return cached;
    }
    const rec = await this.#lookups.lookup(namespace, key, signal);
    if (rec !== undefined) this.#records.set(k, rec);
    return rec;
  }

  async #readCold(rec: GatewayRecord, into: Buffer | undefined, signal: AbortSignal | undefined, asParts: boolean): Promise<BlockParts> {
    if (!asParts || into !== undefined) return whole(await this.#readRecord(rec, into, signal));
    await this.#awaitView(signal);
    const out = await readBlockParts(this.#readCtx, rec, signal);
    if (out.degraded) this.#stats.degradedReads++;
    return out;
  }

  async #readRecord(rec: GatewayRecord, into: Buffer | undefined, signal: AbortSignal | undefined): Promise<Buffer> {
    if (into !== undefined && into.length < rec.sizeBytes) badInput(`into holds ${into.length} bytes; the value has ${rec.sizeBytes}`);
    await this.#awaitView(signal);
    const out = await readBlock(this.#readCtx, rec, into, signal);
    if (out.degraded) this.#stats.degradedReads++;
    return out.payload;
  }

  #prefetch(rec: GatewayRecord): void {
    const k = entryKey(rec.namespace, rec.key);
    if (this.#prefetching >= PREFETCH_INFLIGHT_MAX || this.#tier.peek(k) !== undefined || this.#closed) return;
    const codec = codecFor(rec.redundancy);
    const charged = Math.max(rec.sizeBytes, codec.fragmentBytes(rec.sizeBytes) * codec.fragmentsNeeded);
    if (!this.#tier.budget.tryAcquire(charged)) return;
    this.#prefetching++;
    this.#stats.prefetches++;
    const buffer = Buffer.allocUnsafeSlow(charged);
    void readBlock(this.#readCtx, rec, buffer, undefined)
      .then((out) => {
        if (this.#tier.peek(k) !== undefined || this.#closed) {
          this.#tier.budget.release(charged);
          return;
        }
        this.#tier.insert(k, {
          namespace: rec.namespace,
          key: rec.key,
          version: rec.version,
          payload: out.payload,
          buffer,
          checksum: rec.checksum,
          state: 'committed',
          superseded: false,
          validUntilMs: this.#nowMs() + this.#dramLeaseMs,
          releaseOnSettle: false,
        });
      })
      .catch(() => this.#tier.budget.release(charged))
      .finally(() => this.#prefetching--);
  }
}

function reporterStats(r: BadFragmentReporter): Pick<GatewayStats, 'badFragmentReportsSent' | 'badFragmentReportsDropped' | 'badFragmentReportsFailed'> {
  const s = r.stats();
  return { badFragmentReportsSent: s.sent, badFragmentReportsDropped: s.dropped, badFragmentReportsFailed: s.failed };
}

function checkNsKey(namespace: string, key: Uint8Array): Buffer {
  if (!(key instanceof Uint8Array)) badInput('key must be a Uint8Array');
  wrapInput(() => {
    validateNamespace(namespace);
    validateKey(key);
  });
  return Buffer.from(key);
}

function wrapInput(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    throw gatewayErrors.create('TW_GATEWAY_BAD_INPUT', (err as Error).message, { cause: err, details: isTwError(err) ? { code: err.code } : {} });
  }
}

function badInput(message: string): never {
  throw gatewayErrors.create('TW_GATEWAY_BAD_INPUT', message);
}

function intOption(name: string, v: number | undefined, fallback: number, min: number, max: number): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < min || x > max) badInput(`option ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return x;
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** One buffer as BlockParts that need no release (tier memory, or a buffer the caller owns). */
function whole(b: Buffer): BlockParts {
  return { parts: [b], sizeBytes: b.length, degraded: false, release: () => undefined };
}
