import { ByteBudget } from './byte-budget.js';

/** One block held in gateway memory. */
export interface TierEntry {
  readonly namespace: string;
  readonly key: Buffer;
  readonly version: bigint;
  /** The payload: a view of `buffer`. */
  readonly payload: Buffer;
  /** Memory charged to the tier (the payload padded for the codec). */
  readonly buffer: Buffer;
  readonly checksum: bigint;
  /**
   * `pending`: accepted, not yet committed (only this gateway can serve it; never evicted);
   * `committed`: durable and committed, or read from storage (a cache copy, evictable, LRU).
   */
  state: 'pending' | 'committed';
  /** Set when a newer put or a delete replaced the entry before its commit: the commit is skipped. */
  superseded: boolean;
  /** A committed entry is served without re-checking its version until then. */
  validUntilMs: number;
  /** Removed while pending: its bytes return to the budget when its flush settles (the flush still reads them). */
  releaseOnSettle: boolean;
  /** Settles when the entry's flush settled (pending entries only). */
  settled?: Promise<unknown>;
}

/**
 * The DRAM tier: accepted and cached blocks, bounded in bytes. Accepting waits (abortably) for
 * room; room comes from evicting committed entries (least recently used first) and from pending
 * entries becoming committed. Pending entries are never evicted: they may be the only copy.
 */
export class DramTier {
  readonly #entries = new Map<string, TierEntry>();
  readonly budget: ByteBudget;
  #evictions = 0;

  constructor(capacityBytes: number) {
    this.budget = new ByteBudget(capacityBytes, (needed) => this.#evict(needed));
  }

  get usedBytes(): number {
    return this.budget.usedBytes;
  }

  get evictions(): number {
    return this.#evictions;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(k: string): TierEntry | undefined {
    const e = this.#entries.get(k);
    if (e !== undefined) {
      this.#entries.delete(k);
      this.#entries.set(k, e);
    }
    return e;
  }

  peek(k: string): TierEntry | undefined {
    return this.#entries.get(k);
  }

  /** Inserts an entry whose bytes were acquired from `budget`; a previous entry of the key is replaced. */
  insert(k: string, e: TierEntry): void {
    const prev = this.#entries.get(k);
    if (prev !== undefined) this.remove(k);
    this.#entries.set(k, e);
  }

  /** Drops an entry (and marks it superseded), returning its bytes to the budget. */
  remove(k: string): TierEntry | undefined {
    const e = this.#entries.get(k);
    if (e === undefined) return undefined;
    this.#entries.delete(k);
    e.superseded = true;
    if (e.state === 'pending') e.releaseOnSettle = true;
    else this.budget.release(e.buffer.length);
    return e;
  }

  /** The flush of a pending entry settled (committed, failed or skipped). */
  flushSettled(e: TierEntry): void {
    if (e.releaseOnSettle) {
      e.releaseOnSettle = false;
      this.budget.release(e.buffer.length);
    }
  }

  /** Drops `e` only if it is still the entry of `k`. */
  removeIf(k: string, e: TierEntry): void {
    if (this.#entries.get(k) === e) this.remove(k);
  }

  /** A pending entry became committed: it is evictable now, so waiters may fit. */
  markCommitted(e: TierEntry, validUntilMs: number): void {
    if (e.superseded) return;
    e.state = 'committed';
    e.validUntilMs = validUntilMs;
    this.budget.poke();
  }

  #evict(neededBytes: number): void {
    let freed = 0;
    for (const [k, e] of this.#entries) {
      if (freed >= neededBytes) break;
      if (e.state !== 'committed') continue;
      this.#entries.delete(k);
      this.#evictions++;
      freed += e.buffer.length;
      // Direct release without re-entering eviction: the budget is mid-decision.
      this.budget.releaseQuietly(e.buffer.length);
    }
  }
}
