import type { KvEntry, KvIterator, KvOp, KvRange, KvStore } from './kv-store.js';

/**
 * A sorted in-memory KvStore for the simulator and tests. Keys live in a Map keyed by their
 * latin1 string (whose code-unit order is byte order) and in a sorted array that absorbs new keys
 * and deletions lazily, at the next ordered read: a write costs O(1), a read after p new keys
 * O(n + p log p). An iterator copies its range (up to its limit) when it is created, which gives
 * it the snapshot semantics of the contract.
 */
export function memoryKvStore(): KvStore {
  return new MemoryKvStore();
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

class MemoryKvStore implements KvStore {
  readonly #map = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  #sorted: string[] = [];
  #added: string[] = [];
  #deleted = false;

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#map.get(latin1(key))?.value;
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return keys.map((k) => this.#map.get(latin1(k))?.value);
  }

  async write(ops: readonly KvOp[]): Promise<void> {
    // Copy first so that a bad op leaves the store untouched (atomic).
    const staged = ops.map((op) => (op.type === 'put' ? { type: op.type, s: latin1(op.key), key: op.key.slice(), value: op.value.slice() } : { type: op.type, s: latin1(op.key) }));
    for (const op of staged) {
      if (op.type === 'put') {
        if (!this.#map.has(op.s)) this.#added.push(op.s);
        this.#map.set(op.s, { key: op.key!, value: op.value! });
      } else if (this.#map.delete(op.s)) {
        this.#deleted = true;
      }
    }
  }

  #settle(): string[] {
    if (this.#added.length > 0 || this.#deleted) {
      const live = this.#deleted ? this.#sorted.filter((s) => this.#map.has(s)) : this.#sorted;
      const added = [...new Set(this.#added.filter((s) => this.#map.has(s)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const merged: string[] = new Array<string>(live.length + added.length);
      let i = 0;
      let j = 0;
      let o = 0;
      while (i < live.length || j < added.length) {
        // A key deleted and put again before this merge is in both lists: keep it once.
        if (i < live.length && j < added.length && live[i] === added[j]) j++;
        else if (j >= added.length || (i < live.length && live[i]! < added[j]!)) merged[o++] = live[i++]!;
        else merged[o++] = added[j++]!;
      }
      merged.length = o;
      this.#sorted = merged;
      this.#added = [];
      this.#deleted = false;
    }
    return this.#sorted;
  }

  #select(range: KvRange): KvEntry[] {
    const sorted = this.#settle();
    let lo = 0;
    if (range.gte !== undefined || range.gt !== undefined) {
      const bound = latin1((range.gte ?? range.gt)!);
      const inclusive = range.gte !== undefined;
      let a = 0;
      let b = sorted.length;
      while (a < b) {
        const mid = (a + b) >>> 1;
        const s = sorted[mid]!;
        if (s < bound || (!inclusive && s === bound)) a = mid + 1;
        else b = mid;
      }
      lo = a;
    }
    const hi = range.lt !== undefined ? latin1(range.lt) : range.lte !== undefined ? latin1(range.lte) : undefined;
    const hiInclusive = range.lt === undefined;
    const limit = range.limit === undefined || range.limit < 0 ? Infinity : range.limit;
    const out: KvEntry[] = [];
    for (let i = lo; i < sorted.length && out.length < limit; i++) {
      const s = sorted[i]!;
      if (hi !== undefined && (s > hi || (!hiInclusive && s === hi))) break;
      const e = this.#map.get(s)!;
      out.push([e.key, e.value]);
    }
    return out;
  }

  iterator(range: KvRange = {}): KvIterator {
    let entries: KvEntry[] | undefined = this.#select(range);
    let at = 0;
    return {
      next: async (maxEntries: number) => {
        if (entries === undefined) return [];
        const page = entries.slice(at, at + Math.max(1, maxEntries));
        at += page.length;
        return page;
      },
      close: async () => {
        entries = undefined;
      },
    };
  }

  async clear(range: KvRange = {}): Promise<void> {
    const victims = this.#select(range);
    await this.write(victims.map(([key]) => ({ type: 'del', key })));
  }
}
