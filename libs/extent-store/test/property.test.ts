import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, recordBytesFor, type ExtentStore, type FileLayer } from '../src/index.js';
import { bytesFor, KiB, TempDirs } from './helpers.js';

/**
 * Differential test: random sequences of put / delete / compact / reopen / crash / rebuildIndex /
 * concurrent bursts cut by a power loss, against a Map model. After every step each key must
 * read back exactly what the model says (or, right after a power loss, one of the values the
 * unacknowledged operations allow), and the live-byte accounting must match the model.
 * Replay or widen: PROP_SEED=<seed> PROP_RUNS=<n> npx vitest run test/property.test.ts
 */
const KEYS = 16;
const idOf = (k: number): Buffer => Buffer.from(`ns\u0000key-${k}`);

type Val = { seed: number; size: number } | null; // null: absent

type Op =
  | { t: 'put'; k: number; seed: number; size: number }
  | { t: 'del'; k: number }
  | { t: 'compact'; ratio: number }
  | { t: 'crashInCompaction'; atWrite: number }
  | { t: 'reopen' }
  | { t: 'crash' }
  | { t: 'rebuild' }
  | { t: 'burst'; ops: { k: number; seed: number; size: number; del: boolean }[]; powerLossAt: number };

const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 3000 }) },
  { weight: 2, arbitrary: fc.integer({ min: 3000, max: 12 * KiB }) },
  { weight: 1, arbitrary: fc.integer({ min: 12 * KiB, max: 40 * KiB }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('put' as const), k: fc.nat(KEYS - 1), seed: fc.nat(1e6), size: sizeArb }) },
  // Keys below KEYS / 2 are deleted; the rest mostly stay, so some extents keep little garbage
  // and survive compaction next to ones that do not (the case tombstone retention exists for).
  { weight: 4, arbitrary: fc.record({ t: fc.constant('del' as const), k: fc.nat(KEYS / 2 - 1) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('compact' as const), ratio: fc.double({ min: 0.05, max: 0.95, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crashInCompaction' as const), atWrite: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'crash' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'rebuild' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('burst' as const),
      ops: fc.uniqueArray(fc.record({ k: fc.nat(KEYS - 1), seed: fc.nat(1e6), size: sizeArb, del: fc.boolean() }), {
        minLength: 1,
        maxLength: 8,
        selector: (o) => o.k,
      }),
      powerLossAt: fc.nat(12), // 0: no power loss
    }),
  },
);

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('property: extent store vs a Map model', () => {
  it('agrees with the model across put/delete/compact/reopen/crash/rebuild/power loss', async () => {
    let runNo = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.nat(1e6), async (ops, layerSeed) => {
        const dir = dirs.make(`prop${runNo++}`);
        const inner = nodeFileLayer();
        let faulty = new FaultyFileLayer(inner, layerSeed);
        const openIt = (files: FileLayer, rebuildIndex = false): Promise<ExtentStore> =>
          openExtentStore({ dir, files, extentSizeBytes: 64 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 }, rebuildIndex });
        let s = await openIt(faulty);
        const model = new Map<number, Val>();
        // Values of unacknowledged operations that may still surface after an index rebuild (a
        // record that reached the disk whole but whose put or delete failed), per key, until an
        // acknowledged operation on the key supersedes them.
        const phantoms = new Map<number, Val[]>();
        try {
          for (const op of ops) {
            const allowed = new Map<number, Val[]>(); // keys whose value is uncertain after a power loss
            switch (op.t) {
              case 'put':
                await s.put(idOf(op.k), bytesFor(op.seed, op.size));
                model.set(op.k, { seed: op.seed, size: op.size });
                phantoms.delete(op.k);
                break;
              case 'del': {
                const deleted = await s.delete(idOf(op.k));
                expect(deleted).toBe((model.get(op.k) ?? null) !== null);
                model.set(op.k, null);
                phantoms.delete(op.k);
                break;
              }
              case 'compact':
                await s.compact({ garbageRatioMin: op.ratio });
                break;
              case 'crashInCompaction':
                faulty.faults.crashOnWrite = op.atWrite;
                await s.compact({ garbageRatioMin: 0.05 }).catch(() => undefined);
                faulty.faults.crashOnWrite = undefined;
                if (faulty.crashed) {
                  await s.close();
                  faulty = new FaultyFileLayer(inner, layerSeed + 3);
                  s = await openIt(faulty);
                }
                break;
              case 'reopen':
                await s.close();
                s = await openIt(faulty);
                break;
              case 'crash':
                faulty.crash();
                await s.close();
                faulty = new FaultyFileLayer(inner, layerSeed + 1);
                s = await openIt(faulty);
                break;
              case 'rebuild':
                await s.rebuildIndex();
                break;
              case 'burst': {
                if (op.powerLossAt > 0) faulty.faults.powerLossOnWrite = op.powerLossAt;
                const results = await Promise.all(
                  op.ops.map((b) =>
                    (b.del ? s.delete(idOf(b.k)) : s.put(idOf(b.k), bytesFor(b.seed, b.size))).then(
                      () => true,
                      () => false,
                    ),
                  ),
                );
                faulty.faults.powerLossOnWrite = undefined;
                op.ops.forEach((b, i) => {
                  const next: Val = b.del ? null : { seed: b.seed, size: b.size };
                  if (results[i]) {
                    model.set(b.k, next);
                    phantoms.delete(b.k);
                  } else {
                    allowed.set(b.k, [model.get(b.k) ?? null, next]);
                    phantoms.set(b.k, [...(phantoms.get(b.k) ?? []), next]);
                  }
                });
                if (faulty.crashed) {
                  await s.close();
                  faulty = new FaultyFileLayer(inner, layerSeed + 2);
                  s = await openIt(faulty);
                } else {
                  // No power loss: every operation must have been acknowledged.
                  expect(allowed.size).toBe(0);
                }
                break;
              }
            }
            let liveBytes = 0;
            for (let k = 0; k < KEYS; k++) {
              const g = await s.get(idOf(k));
              const got: Val = g === undefined ? null : { seed: -1, size: g.bytes.byteLength };
              const candidates = [...(allowed.get(k) ?? [model.get(k) ?? null]), ...(op.t === 'rebuild' ? (phantoms.get(k) ?? []) : [])];
              const match = candidates.find((c) => (c === null ? got === null : got !== null && g!.bytes.equals(bytesFor(c.seed, c.size))));
              expect(match, `key ${k} after ${op.t}: got ${got === null ? 'absent' : `${got.size} bytes`}, allowed ${JSON.stringify(candidates)}`).not.toBe(undefined);
              model.set(k, match!);
              if (match !== null && match !== undefined) liveBytes += recordBytesFor(idOf(k).byteLength, match.size);
            }
            await s.indexed(); // capacity() counts a put once its index batch is in
            const cap = s.capacity();
            expect(cap.liveBytes).toBe(liveBytes);
            expect(cap.fragmentCount).toBe([...model.values()].filter((v) => v !== null).length);
          }
          // Finally, the index rebuilt from the extents alone agrees too.
          await s.close();
          s = await openIt(inner, true);
          for (let k = 0; k < KEYS; k++) {
            const candidates = [model.get(k) ?? null, ...(phantoms.get(k) ?? [])];
            const g = await s.get(idOf(k));
            const match = candidates.some((c) => (c === null ? g === undefined : g !== undefined && g.bytes.equals(bytesFor(c.seed, c.size))));
            expect(match, `key ${k} after the final rebuild: ${g === undefined ? 'absent' : `${g.bytes.byteLength} bytes`}, allowed ${JSON.stringify(candidates)}`).toBe(true);
          }
        } finally {
          await s.close();
        }
      }),
      { seed: Number(process.env.PROP_SEED ?? 20261128), numRuns: Number(process.env.PROP_RUNS ?? 40), endOnFailure: true },
    );
  }, 120_000);
});
