import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KvStore, cachingKvStore, kvEntries, memoryKvStore } from '../src/index.js';

const hex = (u: Uint8Array | undefined): string => (u === undefined ? 'none' : Buffer.from(u).toString('hex'));
const k = (i: number): Uint8Array => Uint8Array.from([i]);

/** A memory store whose reads and writes finish when the fast-check scheduler says so. */
function slowStore(inner: KvStore, s: fc.Scheduler): KvStore {
  return {
    get: (key) => s.schedule(Promise.resolve(), 'get').then(() => inner.get(key)),
    // The read happens at a scheduled point, so a write may land between call and read.
    getMany: (keys) => s.schedule(Promise.resolve(), 'getMany').then(() => inner.getMany(keys)).then((r) => s.schedule(Promise.resolve(r), 'getMany-deliver')),
    write: (ops) => s.schedule(Promise.resolve(), 'write').then(() => inner.write(ops)),
    iterator: (range) => inner.iterator(range),
    clear: (range) => inner.clear(range),
  };
}

type Op = { t: 'settle' } | { t: 'write'; puts: [number, number | null][] } | { t: 'read'; keys: number[] } | { t: 'prefetch'; keys: number[] } | { t: 'scan' } | { t: 'allocate'; on: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('write' as const), puts: fc.array(fc.tuple(fc.nat(7), fc.option(fc.nat(255), { nil: null })), { minLength: 1, maxLength: 4 }) }),
  fc.record({ t: fc.constant('read' as const), keys: fc.array(fc.nat(7), { minLength: 1, maxLength: 4 }) }),
  fc.record({ t: fc.constant('prefetch' as const), keys: fc.array(fc.nat(7), { minLength: 1, maxLength: 4 }) }),
  fc.constant({ t: 'scan' as const }),
  fc.constant({ t: 'settle' as const }),
  fc.record({ t: fc.constant('allocate' as const), on: fc.boolean() }),
);

describe('cachingKvStore', () => {
  it('never serves a stale value from its cache, whatever the interleaving of slow reads and writes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 8 }), fc.constantFrom(0, 1, 2, undefined), fc.boolean(), async (s, ops, cacheMax, absentMax, mixed) => {
        const inner = memoryKvStore();
        const store = cachingKvStore(slowStore(inner, s), {
          // Every key cacheable, or only the even ones (the others bypass cache and absent set).
          cacheable: mixed ? (key) => key[0]! % 2 === 0 : () => true,
          cacheEntriesMax: cacheMax,
          ...(absentMax === undefined ? {} : { absentKeysMax: absentMax }),
        });
        const model = new Map<number, number>();
        const pending: Promise<unknown>[] = [];
        for (const op of ops) {
          if (op.t === 'settle') {
            await s.waitFor(Promise.all(pending));
          } else if (op.t === 'allocate') {
            store.writeAllocate = op.on;
          } else if (op.t === 'write') {
            for (const [key, v] of op.puts) {
              if (v === null) model.delete(key);
              else model.set(key, v);
            }
            pending.push(store.write(op.puts.map(([key, v]) => (v === null ? { type: 'del' as const, key: k(key) } : { type: 'put' as const, key: k(key), value: Uint8Array.from([v]) }))));
          } else if (op.t === 'read') {
            pending.push(store.getMany(op.keys.map(k)));
          } else if (op.t === 'prefetch') {
            pending.push(store.prefetch(op.keys.map(k)));
          } else {
            pending.push((async () => {
              for await (const _ of kvEntries(store)) void _;
            })());
          }
        }
        await s.waitFor(Promise.all(pending));
        await s.waitFor(store.flush());
        for (let key = 0; key < 8; key++) {
          const want = model.has(key) ? hex(Uint8Array.from([model.get(key)!])) : 'none';
          expect(hex(await s.waitFor(store.get(k(key)))), `key ${key} through the cache`).toBe(want);
          expect(hex(await inner.get(k(key))), `key ${key} in the inner store`).toBe(want);
          // Lookups' path: the cache first, then overlay and absent set (a string hit is latin1).
          const [latin1] = await s.waitFor(store.getManyLatin1!([Buffer.from(k(key)).toString('latin1')]));
          const got = latin1 === undefined ? 'none' : typeof latin1 === 'string' ? Buffer.from(latin1, 'latin1').toString('hex') : hex(latin1);
          expect(got, `key ${key} through getManyLatin1`).toBe(want);
        }
        expect(store.stagedOps).toBe(0);
      }),
      { seed: 5150, numRuns: 300 },
    );
  });

  it('does not fill its cache with what a read got before a clear() that ran while it was out', async () => {
    const inner = memoryKvStore();
    await inner.write([{ type: 'put', key: k(1), value: k(7) }]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let held = true;
    const gated: KvStore = {
      get: (key) => inner.get(key),
      write: (ops) => inner.write(ops),
      iterator: (range) => inner.iterator(range),
      clear: (range) => inner.clear(range),
      // The first read answers from the inner store at once, then waits for the gate to deliver.
      getMany: async (keys) => {
        const got = await inner.getMany(keys);
        if (held) {
          held = false;
          await gate;
        }
        return got;
      },
    };
    const store = cachingKvStore(gated, { cacheable: () => true });
    const read = store.getMany([k(1)]);
    await store.clear();
    release();
    expect(hex((await read)[0])).toBe('07'); // the read itself answers what it read
    expect(await store.get(k(1))).toBeUndefined(); // but that answer was not cached
    expect(store.cacheSize).toBe(0);
  });

  it('gathers the writes made while one flush is out into a single inner batch', async () => {
    const inner = memoryKvStore();
    let batches = 0;
    const counting: KvStore = {
      ...inner,
      write: async (ops) => {
        batches++;
        await new Promise((r) => setTimeout(r, 5)); // a disk write takes a while
        await inner.write(ops);
      },
    };
    const store = cachingKvStore(counting);
    for (let i = 0; i < 100; i++) await store.write([{ type: 'put', key: k(i), value: k(i) }]);
    await store.flush();
    expect(batches).toBeLessThanOrEqual(3);
    expect(hex(await inner.get(k(99)))).toBe('63');
  });

  it('keeps exactly the most recently filled or written keys, up to its bound, and absent keys apart, with write-allocate on or off (differential against a list model)', async () => {
    type CacheOp = { t: 'write'; keys: number[] } | { t: 'read'; keys: number[] } | { t: 'clear' } | { t: 'allocate'; on: boolean };
    const keysArb = fc.array(fc.nat(9), { minLength: 1, maxLength: 5 });
    const cacheOpArb: fc.Arbitrary<CacheOp> = fc.oneof(
      { arbitrary: fc.record({ t: fc.constant('write' as const), keys: keysArb }), weight: 4 },
      { arbitrary: fc.record({ t: fc.constant('read' as const), keys: keysArb }), weight: 4 },
      { arbitrary: fc.constant({ t: 'clear' as const }), weight: 1 },
      { arbitrary: fc.record({ t: fc.constant('allocate' as const), on: fc.boolean() }), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(cacheOpArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 4 }), async (ops, cacheMax, absentMax) => {
        const inner = memoryKvStore();
        let keysRead = 0;
        const counting: KvStore = {
          get: (key) => inner.get(key),
          getMany: (keys) => ((keysRead += keys.length), inner.getMany(keys)),
          write: (w) => inner.write(w),
          iterator: (range) => inner.iterator(range),
          clear: (range) => inner.clear(range),
        };
        const store = cachingKvStore(counting, { cacheable: () => true, cacheEntriesMax: cacheMax, absentKeysMax: absentMax });
        // The model: cached keys, oldest filled or written first; a hit does not move a key. Keys
        // read and not found are remembered apart (emptied when full), until written.
        let model: number[] = [];
        let absentModel = new Set<number>();
        const written = new Set<number>();
        const fill = (key: number): void => {
          model = model.filter((x) => x !== key);
          model.push(key);
          if (model.length > cacheMax) model.shift();
        };
        let allocate = true;
        for (const op of ops) {
          if (op.t === 'allocate') {
            store.writeAllocate = op.on;
            allocate = op.on;
          } else if (op.t === 'write') {
            await store.write(op.keys.map((key) => ({ type: 'put' as const, key: k(key), value: k(key) })));
            await store.flush();
            for (const key of op.keys) {
              // Without write-allocate a write refreshes a cached key and leaves others out.
              if (allocate || model.includes(key)) fill(key);
              absentModel.delete(key);
              written.add(key);
            }
          } else if (op.t === 'read') {
            const missed = op.keys.filter((key) => !model.includes(key) && !absentModel.has(key));
            await store.getMany(op.keys.map(k));
            const freshAbsent: number[] = [];
            for (const key of missed) {
              if (written.has(key)) {
                if (!model.includes(key)) fill(key);
              } else if (!freshAbsent.includes(key)) freshAbsent.push(key);
            }
            // A read's absent keys empty the set first when they would overflow it; past the
            // bound the rest are not remembered.
            if (absentMax > 0 && freshAbsent.length > 0) {
              if (absentModel.size + freshAbsent.length > absentMax) absentModel = new Set();
              for (const key of freshAbsent) if (absentModel.size < absentMax) absentModel.add(key);
            }
          } else {
            await store.clear();
            model = [];
            absentModel = new Set();
            written.clear();
          }
          expect(store.cacheSize).toBe(model.length);
          expect(store.absentSize).toBe(absentModel.size);
        }
        // Every key the model holds is a hit (no inner read); with equal sizes the sets are equal.
        keysRead = 0;
        await store.getMany([...model, ...absentModel].map(k));
        expect(keysRead).toBe(0);
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('refuses every call after an inner write failed', async () => {
    const inner = memoryKvStore();
    const store = cachingKvStore({ ...inner, write: () => Promise.reject(new Error('disk full')) });
    await store.write([{ type: 'put', key: k(1), value: k(1) }]);
    await expect(store.flush()).rejects.toThrow();
    await expect(store.get(k(1))).rejects.toMatchObject({ code: 'TW_BLOCKMAP_CORRUPT_STATE' });
  });
});
