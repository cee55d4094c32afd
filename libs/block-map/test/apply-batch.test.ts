/**
 * applyBatch over a caching, write-behind store (what the coordinator runs) answers and stores
 * exactly what apply one entry at a time over a plain store does, with lookups running while the
 * batches apply; and the inner store, once flushed, holds the same state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Command, type KvStore, cachingKvStore, isBlockRecordKey, memoryKvStore, openBlockMap } from '../src/index.js';
import { Driver, NODES, block, enc, setupCluster } from './helpers.js';

/** A memory store whose calls finish a few macrotasks later (a disk under load). */
function laggingStore(inner: KvStore): KvStore {
  const later = (): Promise<void> => new Promise((r) => setImmediate(r));
  return {
    get: async (k) => (await later(), inner.get(k)),
    getMany: async (ks) => (await later(), inner.getMany(ks)),
    write: async (ops) => (await later(), inner.write(ops)),
    iterator: (r) => inner.iterator(r),
    clear: (r) => inner.clear(r),
  };
}

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
const keyArb = fc.constantFrom(...KEYS);
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.tuple(keyArb, fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 4 }).map((bs): Command => ({ op: 'commit-blocks', namespace: 'ns', blocks: bs.map(([k, size]) => block(k, size, NODES.slice(0, 3))) })) },
  { weight: 2, arbitrary: fc.array(keyArb, { minLength: 1, maxLength: 3 }).map((ks): Command => ({ op: 'delete-blocks', namespace: 'ns', keys: ks.map(enc) })) },
  { weight: 1, arbitrary: fc.array(keyArb, { minLength: 1, maxLength: 3 }).map((ks): Command => ({ op: 'touch-blocks', namespace: 'ns', keys: ks.map(enc) })) },
  { weight: 1, arbitrary: fc.tuple(keyArb, fc.nat(40)).map(([k, v]): Command => ({ op: 'purge-blocks', graceMs: 0, refs: [{ namespace: 'ns', key: enc(k), version: v }] })) },
  { weight: 1, arbitrary: fc.constant<Command>({ op: 'commit-blocks', namespace: 'nope', blocks: [block('x')] }) },
);

describe('BlockMap.applyBatch over a caching store', () => {
  it('snapshots taken while writes are still staged restore to the same state, through a caching store too', async () => {
    const source = cachingKvStore(laggingStore(memoryKvStore()), { cacheable: isBlockRecordKey, cacheEntriesMax: 3 });
    const a = await Driver.open(source);
    await setupCluster(a);
    for (let i = 0; i < 20; i++) await a.ok({ op: 'commit-blocks', namespace: 'ns', blocks: [block(`k${i}`, 10 + i), block(`k${i % 7}`, 5)] });
    await a.ok({ op: 'delete-blocks', namespace: 'ns', keys: [enc('k3')] });
    expect(source.stagedOps).toBeGreaterThan(0); // the inner store has not caught up
    const stream = a.map.snapshotChunks(4096);
    const chunks: Uint8Array[] = [];
    for await (const c of stream) chunks.push(c);
    const target = cachingKvStore(laggingStore(memoryKvStore()), { cacheable: isBlockRecordKey, cacheEntriesMax: 3 });
    const b = await Driver.open(target);
    await setupCluster(b);
    await b.ok({ op: 'commit-blocks', namespace: 'ns', blocks: [block('stale', 1)] }); // replaced by the restore
    expect(await b.map.restoreFromChunks((async function* () { yield* chunks; })())).toBe(a.map.appliedIndex);
    expect(await b.map.stateDigest()).toBe(await a.map.stateDigest());
    const keys = ['stale', 'k1', 'k3', 'k19'].map(enc);
    expect(await b.map.lookupPrefix('ns', keys)).toEqual(await a.map.lookupPrefix('ns', keys));
  });

  it('matches apply one by one: same outcomes, same lookups, same state', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(commandArb, fc.integer({ min: 1, max: 3 }), fc.boolean()), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 6 }),
        async (cmds, cuts, cacheMax) => {
          const ref = await Driver.open(memoryKvStore());
          await setupCluster(ref);
          const inner = memoryKvStore();
          const store = cachingKvStore(laggingStore(inner), { cacheable: isBlockRecordKey, cacheEntriesMax: cacheMax });
          const sub = await Driver.open(store);
          await setupCluster(sub);
          // The same bytes for both (client ids and seqs included, retries repeat a seq).
          let prev: Uint8Array | undefined;
          const entries = cmds.map(([command, clientId, retry], i) => {
            ref.nowMs += 10;
            const bytes = retry && prev !== undefined ? prev : ref.bytes(command, clientId);
            prev = bytes;
            return { index: ref.index + 1 + i, data: bytes };
          });
          const want = [];
          for (const e of entries) want.push(await ref.map.apply(e.index, e.data));
          const got = [];
          const lookups: Promise<unknown>[] = [];
          let at = 0;
          for (let c = 0; at < entries.length; c++) {
            const n = cuts[c % cuts.length]!;
            const batch = entries.slice(at, at + n);
            at += n;
            const p = sub.map.applyBatch(batch);
            // Queries while the batch applies see some whole-entry prefix of it (never an error).
            lookups.push(sub.map.lookupPrefix('ns', KEYS.map(enc)));
            got.push(...(await p));
            if (c % 2 === 1) await store.flush(); // sometimes the inner store catches up between batches
          }
          await Promise.all(lookups);
          expect(got).toEqual(want);
          const keys = KEYS.map(enc);
          expect(await sub.map.lookupPrefix('ns', keys)).toEqual(await ref.map.lookupPrefix('ns', keys));
          expect(await sub.map.stateDigest()).toBe(await ref.map.stateDigest());
          await store.flush();
          const reopened = await openBlockMap(inner);
          expect(reopened.appliedIndex).toBe(ref.map.appliedIndex);
          expect(await reopened.stateDigest()).toBe(await ref.map.stateDigest());
        },
      ),
      { seed: 0xba7c4, numRuns: 60 },
    );
  });
});
