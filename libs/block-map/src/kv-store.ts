/**
 * The ordered byte-keyed store the block map keeps its state in. Two implementations:
 * `memoryKvStore()` (simulator, unit tests) and `levelKvStore(db)` over an opened classic-level
 * (or any abstract-level) database. Both pass test/kv-store-compliance.ts.
 *
 * Contract:
 * - Keys and values are bytes; keys order byte-wise (shorter first on a common prefix).
 * - `write(ops)` is atomic: after a crash either every op of the batch is visible or none is.
 *   Ops apply in array order (a later op on the same key wins).
 * - An iterator reads a consistent view of the store as of its creation: writes made after
 *   `iterator()` returns are invisible to it. Close it (or read it to the end) to free it.
 * - The store keeps its own copy of what it is given and never mutates what it returns; callers
 *   must not mutate returned arrays either (the memory store hands out its own).
 */

export type KvEntry = readonly [key: Uint8Array, value: Uint8Array];

export type KvOp = { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array } | { readonly type: 'del'; readonly key: Uint8Array };

/** A key range: lower bound `gt` or `gte`, upper bound `lt` or `lte`; `limit` caps entries (default: none). */
export interface KvRange {
  readonly gt?: Uint8Array;
  readonly gte?: Uint8Array;
  readonly lt?: Uint8Array;
  readonly lte?: Uint8Array;
  readonly limit?: number;
}

export interface KvIterator {
  /** Up to `maxEntries` next entries in key order; an empty array at the end. */
  next(maxEntries: number): Promise<KvEntry[]>;
  /** Frees the iterator; idempotent. */
  close(): Promise<void>;
}

export interface KvStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** One round trip for many keys; the result is aligned with `keys`. */
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** Atomic batch of puts and deletes. */
  write(ops: readonly KvOp[]): Promise<void>;
  iterator(range?: KvRange): KvIterator;
  /** Deletes every key in the range (all keys without one). Not atomic with other writes. */
  clear(range?: KvRange): Promise<void>;
  /** Optional: warm a cache for `keys` that are about to be read (caching stores implement it). */
  prefetch?(keys: readonly Uint8Array[]): Promise<void>;
  /**
   * Optional: getMany with keys given as latin1 strings (one char per byte) and values returned as
   * latin1 strings or bytes, for stores that keep strings (a caching store answers its hits
   * without allocating a Uint8Array per value). Same answers as getMany.
   */
  getManyLatin1?(keys: readonly string[]): Promise<(string | Uint8Array | undefined)[]>;
}

/** Every entry of a range, `pageEntries` at a time; closes the iterator even when the loop breaks. */
export async function* kvEntries(store: KvStore, range: KvRange = {}, pageEntries = 256): AsyncGenerator<KvEntry> {
  const it = store.iterator(range);
  try {
    for (;;) {
      const page = await it.next(pageEntries);
      if (page.length === 0) return;
      yield* page;
    }
  } finally {
    await it.close();
  }
}

/** The smallest key greater than every key that starts with `prefix` (undefined for all-0xff prefixes). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = Uint8Array.from(prefix);
  for (let i = end.byteLength - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

/** The range of all keys that start with `prefix`. */
export function prefixRange(prefix: Uint8Array, limit?: number): KvRange {
  const lt = prefixEnd(prefix);
  return { gte: prefix, ...(lt === undefined ? {} : { lt }), ...(limit === undefined ? {} : { limit }) };
}
