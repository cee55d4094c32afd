/**
 * A KvStore in front of another one (LevelDB in the coordinator) that takes the store's latency
 * off the apply path and the read path:
 *
 * - Write-behind: `write(ops)` stages the batch in an in-memory overlay (every read, iterators
 *   included, sees it at once) and resolves; the staged batches reach the inner store as ONE
 *   inner batch per flush, in call order. A flush starts on the next microtask and, while it is
 *   out, later writes gather for the next one. Each inner batch is the concatenation of whole
 *   `write` batches, so the inner store stays atomic per `write` (a block map's apply).
 * - A bounded read cache of chosen keys (the block records), kept coherent by writing through,
 *   and a bounded set of those keys known to be absent. `prefetch(keys)` fills both with one inner
 *   getMany, so that the reads an apply makes afterwards do not wait on the inner store.
 *   Absent keys are kept apart from the cache: a commit of new blocks reads each key (absent) and
 *   then writes it, and entering each one in the large LRU map twice (absent, then written) with
 *   an eviction each time was the largest share of an apply's CPU (measured).
 *
 * Durability: a resolved `write` is NOT on disk, not even in the inner store, until `flush()`
 * resolves. That suits a Raft state machine whose applied index is written with its state: after
 * a crash the inner store is at some earlier applied index and Raft re-applies the entries after
 * it, as long as the Raft log still holds them (flush before compacting it). Once an inner write
 * fails, every later call rejects: memory is ahead of the inner store, reopen from it.
 */
import { compareBytes } from './bytes.js';
import type { KvEntry, KvIterator, KvOp, KvRange, KvStore } from './kv-store.js';
import { blockMapErrors } from './errors.js';
import { TAG_BLOCK } from './keys.js';
import { ABSENT_KEYS_MAX, CACHE_ENTRIES_DEFAULT, WRITE_BEHIND_OPS_MAX, WRITTEN_DURING_READS_MAX } from './limits.js';

export interface CachingKvStoreOptions {
  /** Keys whose values (or absence) are cached. Default: none (write-behind only). */
  readonly cacheable?: (key: Uint8Array) => boolean;
  /** Cached keys kept, oldest written or read first out (default CACHE_ENTRIES_DEFAULT). */
  readonly cacheEntriesMax?: number;
  /**
   * Keys remembered as absent, apart from the cache (default: ABSENT_KEYS_MAX, at most the cache's
   * bound, so that `cacheEntriesMax: 0` turns both off). A read whose absent keys would overflow
   * the set empties it first; past the bound, further absent keys are not remembered.
   */
  readonly absentKeysMax?: number;
  /**
   * The caller hands over the arrays and op objects it writes and never changes them afterwards
   * (a block map encodes fresh ones for every apply): the store keeps them as they are instead of
   * copying each key and value (default false: the store copies, as the KvStore contract says).
   */
  readonly adoptWrites?: boolean;
  /** Staged ops past which `write` waits for the inner store to catch up (default WRITE_BEHIND_OPS_MAX). */
  readonly stagedOpsMax?: number;
  /** Initial {@link CachingKvStore.writeAllocate} (default true). */
  readonly writeAllocate?: boolean;
}

export interface CachingKvStore extends KvStore {
  /** Resolves once every write made before the call is in the inner store. */
  flush(): Promise<void>;
  /** Fills the cache for the cacheable ones of `keys` that it does not hold (one inner read). */
  prefetch(keys: readonly Uint8Array[]): Promise<void>;
  /** Cached keys (for metrics and tests). */
  readonly cacheSize: number;
  /** Keys remembered as absent (for metrics and tests). */
  readonly absentSize: number;
  /** Ops staged but not yet confirmed by the inner store. */
  readonly stagedOps: number;
  /**
   * Whether a write enters a cacheable key the cache does not hold (true), or only updates keys
   * it holds (false: reads still fill it). Can change at any time. A coordinator turns it off
   * while it follows: only the leader serves lookups, and entering every newly committed record
   * cost a follower ~3-5 of the ~17-24 CPU-us that applying a block costs (measured).
   */
  writeAllocate: boolean;
}

/**
 * A staged write: its value as a latin1 string (null: deleted), keyed in the overlay by the key's
 * latin1 string. Strings, not the caller's byte views: staged records stay alive while the inner
 * write is out, and a view per key and value (each an object over a shared pool slab) that
 * survives a scavenge is promoted and collected later, the largest share of the overlay's cost.
 */
interface Staged {
  readonly value: string | null;
  readonly seq: number;
}

/** A queued op: what the inner store gets, dropped once it has it (see drain). */
interface Queued {
  op: KvOp | undefined;
  readonly seq: number;
  readonly s: string;
}

/** The `cacheable` predicate for a block map's store: its current block records. */
export const isBlockRecordKey = (key: Uint8Array): boolean => key[0] === TAG_BLOCK;

const str = (k: Uint8Array): string => Buffer.prototype.latin1Slice.call(k, 0, k.byteLength) as string;
const plainView = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const copyOf = (u: Uint8Array): Uint8Array => plainView(Buffer.from(u));
/** A plain Uint8Array (what every KvStore hands out) holding a latin1 string's bytes. */
const bytesOf = (v: string): Uint8Array => {
  return plainView(Buffer.from(v, 'latin1'));
};

/** fromMemory's answer for a key memory does not know. */
const MISS = Symbol('miss');

/** The keys of a getMany that memory did not answer, their latin1 strings and their places. */
interface Misses {
  readonly keys: Uint8Array[];
  readonly strs: string[];
  readonly at: number[];
}

function addMiss(m: Misses, key: Uint8Array, s: string, at: number): void {
  m.keys.push(key);
  m.strs.push(s);
  m.at.push(at);
}

function inRange(key: Uint8Array, r: KvRange): boolean {
  if (r.gt !== undefined && compareBytes(key, r.gt) <= 0) return false;
  if (r.gte !== undefined && compareBytes(key, r.gte) < 0) return false;
  if (r.lt !== undefined && compareBytes(key, r.lt) >= 0) return false;
  if (r.lte !== undefined && compareBytes(key, r.lte) > 0) return false;
  return true;
}

export function cachingKvStore(inner: KvStore, options: CachingKvStoreOptions = {}): CachingKvStore {
  const cacheable = options.cacheable ?? (() => false);
  const cacheMax = options.cacheEntriesMax ?? CACHE_ENTRIES_DEFAULT;
  const absentMax = options.absentKeysMax ?? Math.min(ABSENT_KEYS_MAX, cacheMax);
  const adopt = options.adoptWrites ?? false;
  const stagedMax = options.stagedOpsMax ?? WRITE_BEHIND_OPS_MAX;
  let writeAllocate = options.writeAllocate ?? true;
  /** The newest staged value of each key not yet confirmed by the inner store (null: deleted). */
  const overlay = new Map<string, Staged>();
  /** Ops not yet handed to the inner store, with the seq of the write that made each. */
  let queued: Queued[] = [];
  let stagedCount = 0;
  let seq = 0;
  let draining: Promise<void> | null = null;
  let failed: unknown;
  // Values are kept as latin1 strings: one heap object each, where a Uint8Array would add an
  // ArrayBuffer for the garbage collector to track (measured: ~20 us per cached record).
  const cache = new Map<string, string | null>();
  /** Cacheable keys the inner store answered as absent, not written since (emptied when full). */
  const absent = new Set<string>();
  // Reads that fill the cache from the inner store must not overwrite a newer value written while
  // they were out: writes made while any such read is out are remembered here (cleared when none
  // is), and those keys are not filled. Past WRITTEN_DURING_READS_MAX keys, no key is.
  let readsOut = 0;
  const writtenDuringReads = new Set<string>();
  let tooManyWritten = false;

  const check = (): void => {
    if (failed !== undefined) throw blockMapErrors.create('TW_BLOCKMAP_CORRUPT_STATE', 'an earlier write to the inner store failed; reopen the store', { cause: failed });
  };
  // Eviction walks ONE long-lived iterator over the cache instead of `cache.keys().next()` per
  // eviction: a Map keeps deleted entries as holes until it rehashes, and a fresh iterator scans
  // every hole at the front, so with a full cache of 262,144 entries each insert cost 50-85 us
  // (measured), where the long-lived iterator skips each hole once (~2-3 us an insert). Every
  // entry before the iterator's position has been deleted (re-set entries move to the end), so it
  // yields the oldest live entry, as `keys().next()` did.
  let evictFrom: IterableIterator<string> | undefined;
  const evictOldest = (): void => {
    for (;;) {
      evictFrom ??= cache.keys();
      const next = evictFrom.next();
      if (next.done === true) {
        // A finished iterator stays finished, even after later inserts: start over.
        evictFrom = undefined;
        if (cache.size === 0) return;
        continue;
      }
      cache.delete(next.value);
      return;
    }
  };
  const cacheSet = (s: string, v: Uint8Array | null): void => cacheSetStr(s, v === null ? null : str(v));
  const cacheSetStr = (s: string, v: string | null): void => {
    // A key known absent is not in the cache (the two are disjoint): no need to unlink it there.
    const wasAbsent = absent.size > 0 && absent.delete(s);
    if (cacheMax === 0) return;
    if (!wasAbsent) cache.delete(s); // re-set entries move to the end (most recent)
    cache.set(s, v);
    if (cache.size > cacheMax) evictOldest();
  };
  /**
   * Remembers a read's absent keys (distinct, in read order). Emptying the set first when they
   * would overflow it, rather than whenever it is full, keeps a large prefetch's earliest keys,
   * the ones its apply reads first.
   */
  const rememberAbsent = (strs: readonly string[]): void => {
    if (absentMax === 0) return;
    const fresh = strs.length === 1 ? strs : [...new Set(strs)];
    if (absent.size + fresh.length > absentMax) absent.clear();
    for (const s of fresh) {
      if (absent.size >= absentMax) break;
      absent.add(s);
    }
  };
  /**
   * Bumped when clear() empties the cache and again when the inner store is cleared: a read that
   * was out across a clear must not fill the cache with what it read before.
   */
  let generation = 0;

  const drain = (): Promise<void> => {
    draining ??= (async () => {
      await Promise.resolve(); // let the current synchronous run stage its writes too
      try {
        while (queued.length > 0 && failed === undefined) {
          const batch = queued;
          queued = [];
          const ops = batch.map((b) => b.op!);
          try {
            const written = inner.write(ops);
            // Only the inner store needs the ops now (LevelDB's batch copies them in the call):
            // dropping them lets the collector take the caller's byte views while the write is
            // out; the overlay's strings stand for them.
            for (const b of batch) b.op = undefined;
            await written;
          } catch (err) {
            failed = err;
            throw err;
          }
          stagedCount -= batch.length;
          for (const b of batch) {
            const e = overlay.get(b.s);
            if (e !== undefined && e.seq <= b.seq) overlay.delete(b.s);
          }
        }
      } finally {
        draining = null;
      }
    })();
    const d = draining;
    d.catch(() => undefined);
    return d;
  };

  const flush = async (): Promise<void> => {
    check();
    // Loop: a drain that was already out may have started before the latest writes were queued.
    while (queued.length > 0 || draining !== null) {
      await drain();
      check();
    }
  };

  /** Reads keys not in the overlay or cache from the inner store, filling the cache where safe. */
  const readThrough = async (keys: readonly Uint8Array[], strs: readonly string[]): Promise<(Uint8Array | undefined)[]> => {
    const gen = generation;
    readsOut++;
    try {
      const got = await inner.getMany(keys);
      if (!tooManyWritten && gen === generation) {
        let absentStrs: string[] | undefined;
        for (let i = 0; i < keys.length; i++) {
          const s = strs[i]!;
          if (!cacheable(keys[i]!) || writtenDuringReads.has(s) || overlay.has(s) || absent.has(s) || cache.has(s)) continue;
          const v = got[i];
          if (v === undefined) (absentStrs ??= []).push(s);
          else cacheSet(s, v);
        }
        if (absentStrs !== undefined) rememberAbsent(absentStrs);
      }
      return got;
    } finally {
      // Also after a failed read: the bookkeeping only ever makes fills more cautious.
      readsOut--;
      if (readsOut === 0) {
        writtenDuringReads.clear();
        tooManyWritten = false;
      }
    }
  };

  /**
   * What memory knows of key `s`, newest first: MISS (ask the inner store), null (absent or
   * deleted), or the value as a latin1 string (from the overlay or the cache). Absent keys
   * are checked before the cache: a commit's new keys are there, and a miss in the large cache map
   * costs more.
   */
  const fromMemory = (s: string): string | null | typeof MISS => {
    const e = overlay.get(s);
    if (e !== undefined) return e.value;
    if (absent.has(s)) return null;
    const c = cache.get(s);
    return c === undefined ? MISS : c;
  };

  /** Reads the misses of a getMany through, into their places in `out`. */
  const readMisses = async <T>(out: (T | Uint8Array | undefined)[], misses: Misses, fromStaged: (v: string) => T | Uint8Array): Promise<void> => {
    const got = await readThrough(misses.keys, misses.strs);
    for (let j = 0; j < got.length; j++) {
      // A write made while the read was out wins over what it read.
      const e = overlay.get(misses.strs[j]!);
      out[misses.at[j]!] = e !== undefined ? (e.value === null ? undefined : fromStaged(e.value)) : got[j];
    }
  };

  const getMany = async (keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> => {
    check();
    const out = new Array<Uint8Array | undefined>(keys.length);
    let misses: Misses | undefined;
    for (let i = 0; i < keys.length; i++) {
      const s = str(keys[i]!);
      const m = fromMemory(s);
      if (m !== MISS) out[i] = m === null ? undefined : bytesOf(m);
      else addMiss((misses ??= { keys: [], strs: [], at: [] }), keys[i]!, s, i);
    }
    if (misses !== undefined) await readMisses(out, misses, bytesOf);
    return out;
  };

  /**
   * getMany for latin1 string keys; cache hits come back as the cached strings. Lookups, its
   * callers, mostly hit: the cache is asked first (every write updates it at once, so a hit is
   * the newest value, as in the overlay), and the other two only on a miss.
   */
  const getManyLatin1 = async (keys: readonly string[]): Promise<(string | Uint8Array | undefined)[]> => {
    check();
    const out = new Array<string | Uint8Array | undefined>(keys.length);
    let misses: Misses | undefined;
    for (let i = 0; i < keys.length; i++) {
      const s = keys[i]!;
      const c = cache.get(s);
      const m = c !== undefined ? c : fromMemory(s);
      if (m !== MISS) out[i] = m ?? undefined;
      else addMiss((misses ??= { keys: [], strs: [], at: [] }), bytesOf(s), s, i);
    }
    if (misses !== undefined) await readMisses(out, misses, (v) => v);
    return out;
  };

  const store: CachingKvStore = {
    get cacheSize() {
      return cache.size;
    },
    get absentSize() {
      return absent.size;
    },
    get stagedOps() {
      return stagedCount;
    },
    get writeAllocate() {
      return writeAllocate;
    },
    set writeAllocate(on: boolean) {
      writeAllocate = on;
    },
    flush,
    async prefetch(keys) {
      check();
      const want: Uint8Array[] = [];
      const strs: string[] = [];
      for (const k of keys) {
        if (!cacheable(k)) continue;
        const s = str(k);
        if (overlay.has(s) || absent.has(s) || cache.has(s)) continue;
        want.push(k);
        strs.push(s);
      }
      if (want.length > 0) await readThrough(want, strs);
    },
    async get(key) {
      return (await getMany([key]))[0];
    },
    getMany,
    getManyLatin1,
    async write(ops) {
      check();
      if (ops.length === 0) return;
      const s0 = ++seq;
      for (const given of ops) {
        // The store keeps its own copies (the caller may reuse its buffers); Buffer.from copies
        // small arrays into pooled slabs instead of one ArrayBuffer each.
        let key: Uint8Array;
        let value: Uint8Array | null;
        let op: KvOp;
        if (adopt) {
          op = given;
          key = given.key;
          value = given.type === 'put' ? given.value : null;
        } else {
          key = copyOf(given.key);
          value = given.type === 'put' ? copyOf(given.value) : null;
          op = value === null ? { type: 'del', key } : { type: 'put', key, value };
        }
        const s = str(key);
        const v = value === null ? null : str(value);
        overlay.set(s, { value: v, seq: s0 });
        queued.push({ op, seq: s0, s });
        // Without write-allocate a key the cache does not hold stays out of it (present now, so
        // out of the absent set too): a later read finds it in the overlay or the inner store.
        if (cacheable(key) && (writeAllocate || cache.has(s))) cacheSetStr(s, v);
        else if (absent.size > 0) absent.delete(s);
        if (readsOut > 0 && !tooManyWritten) {
          writtenDuringReads.add(s);
          if (writtenDuringReads.size > WRITTEN_DURING_READS_MAX) tooManyWritten = true;
        }
      }
      stagedCount += ops.length;
      const d = drain();
      if (stagedCount > stagedMax) {
        await d;
        check();
      }
    },
    iterator(range: KvRange = {}): KvIterator {
      check();
      const staged: { key: Uint8Array; value: Uint8Array | null }[] = [];
      for (const [s, e] of overlay) {
        const key = bytesOf(s);
        if (inRange(key, range)) staged.push({ key, value: e.value === null ? null : bytesOf(e.value) });
      }
      if (staged.length === 0) return inner.iterator(range);
      staged.sort((a, b) => compareBytes(a.key, b.key));
      // Unlimited below: staged deletes may hide inner entries, so the limit is applied here.
      const { limit, ...bounds } = range;
      const it = inner.iterator(bounds);
      const max = limit ?? Infinity;
      let page: KvEntry[] = [];
      let at = 0;
      let innerDone = false;
      let si = 0;
      let emitted = 0;
      return {
        async next(maxEntries: number): Promise<KvEntry[]> {
          const out: KvEntry[] = [];
          const want = Math.max(1, maxEntries);
          while (out.length < want && emitted < max) {
            if (!innerDone && at >= page.length) {
              page = await it.next(256);
              at = 0;
              if (page.length === 0) innerDone = true;
            }
            const a = innerDone ? undefined : page[at];
            const b = staged[si];
            if (a === undefined && b === undefined) break;
            const c = a === undefined ? 1 : b === undefined ? -1 : compareBytes(a[0], b.key);
            if (c < 0) {
              out.push(a!);
              at++;
            } else {
              if (c === 0) at++;
              si++;
              if (b!.value === null) continue;
              out.push([b!.key, b!.value] as const);
            }
            emitted++;
          }
          if (out.length === 0) await it.close();
          return out;
        },
        close: () => it.close(),
      };
    },
    async clear(range) {
      await flush();
      generation++;
      cache.clear();
      absent.clear();
      evictFrom = undefined;
      await inner.clear(range);
      // Reads that started while the inner clear was out may have read what it was removing.
      generation++;
      cache.clear();
      absent.clear();
      evictFrom = undefined;
    },
  };
  return store;
}
