/**
 * The KvStore contract (src/kv-store.ts), run by every implementation: `kvStoreCompliance(name,
 * open)` where `open()` gives a fresh empty store and a cleanup function.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { KvEntry, KvRange, KvStore } from '../src/index.js';
import { kvEntries, prefixRange } from '../src/index.js';

export type OpenStore = () => Promise<{ store: KvStore; close: () => Promise<void> }>;

const b = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

async function all(store: KvStore, range: KvRange = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of kvEntries(store, range, 3)) out.push(`${hex(k)}=${hex(v)}`);
  return out;
}

function cmp(a: Uint8Array, c: Uint8Array): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(c));
}

/** The reference: a Map filtered and sorted on every read. */
function modelRange(model: Map<string, Uint8Array>, range: KvRange): string[] {
  const keys = [...model.keys()].map((k) => Buffer.from(k, 'hex')).sort(cmp);
  const out: string[] = [];
  for (const k of keys) {
    if (range.gt !== undefined && cmp(k, range.gt) <= 0) continue;
    if (range.gte !== undefined && cmp(k, range.gte) < 0) continue;
    if (range.lt !== undefined && cmp(k, range.lt) >= 0) continue;
    if (range.lte !== undefined && cmp(k, range.lte) > 0) continue;
    if (range.limit !== undefined && out.length >= range.limit) break;
    out.push(`${hex(k)}=${hex(model.get(hex(k))!)}`);
  }
  return out;
}

/**
 * What a store under test supports, as abstract-level's test suite takes a manifest: a store that
 * adopts what it is given (`adoptsWrites`, a caller's promise not to touch written arrays) is not
 * held to keeping its own copy of them.
 */
export interface KvStoreSupports {
  readonly adoptsWrites?: boolean;
}

export function kvStoreCompliance(name: string, open: OpenStore, supports: KvStoreSupports = {}): void {
  describe(`KvStore compliance: ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });
    const fresh = async (): Promise<KvStore> => {
      const { store, close } = await open();
      cleanups.push(close);
      return store;
    };

    it('gets what was put, undefined for missing keys, getMany aligned', async () => {
      const s = await fresh();
      expect(await s.get(b(1))).toBeUndefined();
      await s.write([{ type: 'put', key: b(1), value: b(10) }, { type: 'put', key: b(2), value: b() }]);
      expect(await s.get(b(1))).toEqual(b(10));
      expect(hex((await s.get(b(2)))!)).toBe('');
      const many = await s.getMany([b(2), b(3), b(1)]);
      expect(many.map((x) => (x === undefined ? 'none' : hex(x)))).toEqual(['', 'none', '0a']);
    });

    it('applies a batch in order: a later op on the same key wins', async () => {
      const s = await fresh();
      await s.write([
        { type: 'put', key: b(5), value: b(1) },
        { type: 'del', key: b(5) },
        { type: 'put', key: b(6), value: b(1) },
        { type: 'put', key: b(6), value: b(2) },
      ]);
      expect(await s.get(b(5))).toBeUndefined();
      expect(hex((await s.get(b(6)))!)).toBe('02');
    });

    if (supports.adoptsWrites !== true) it('keeps its own copy of written bytes', async () => {
      const s = await fresh();
      const key = b(1, 2);
      const value = b(3, 4);
      await s.write([{ type: 'put', key, value }]);
      key[0] = 9;
      value[0] = 9;
      expect(hex((await s.get(b(1, 2)))!)).toBe('0304');
    });

    it('iterates in byte order with gt / gte / lt / lte / limit', async () => {
      const s = await fresh();
      const keys = [b(0xff), b(0), b(1, 0), b(1), b(0x80), b(1, 0xff, 0xff), b(2)];
      await s.write(keys.map((key, i) => ({ type: 'put', key, value: b(i) })));
      expect((await all(s)).map((e) => e.split('=')[0])).toEqual(['00', '01', '0100', '01ffff', '02', '80', 'ff']);
      expect((await all(s, { gt: b(1), lt: b(2) })).map((e) => e.split('=')[0])).toEqual(['0100', '01ffff']);
      expect((await all(s, { gte: b(1), lte: b(2) })).map((e) => e.split('=')[0])).toEqual(['01', '0100', '01ffff', '02']);
      expect((await all(s, { gte: b(1), limit: 2 })).map((e) => e.split('=')[0])).toEqual(['01', '0100']);
      expect((await all(s, prefixRange(b(1)))).map((e) => e.split('=')[0])).toEqual(['01', '0100', '01ffff']);
      expect(await all(s, { gt: b(0xff) })).toEqual([]);
    });

    it('an iterator reads the store as of its creation', async () => {
      const s = await fresh();
      await s.write([1, 2, 3].map((i) => ({ type: 'put', key: b(i), value: b(i) })));
      const it = s.iterator({});
      await s.write([{ type: 'del', key: b(2) }, { type: 'put', key: b(4), value: b(4) }, { type: 'put', key: b(1), value: b(9) }]);
      const seen: KvEntry[] = [];
      for (;;) {
        const page = await it.next(2);
        if (page.length === 0) break;
        seen.push(...page);
      }
      await it.close();
      await it.close();
      expect(seen.map(([k, v]) => `${hex(k)}=${hex(v)}`)).toEqual(['01=01', '02=02', '03=03']);
    });

    it('clears a range, or everything', async () => {
      const s = await fresh();
      await s.write([1, 2, 3, 4].map((i) => ({ type: 'put', key: b(i), value: b(i) })));
      await s.clear({ gte: b(2), lt: b(4) });
      expect((await all(s)).map((e) => e.split('=')[0])).toEqual(['01', '04']);
      await s.clear();
      expect(await all(s)).toEqual([]);
    });

    it('matches a reference model under random batches and ranges', async () => {
      const s = await fresh();
      const model = new Map<string, Uint8Array>();
      const key = fc.uint8Array({ minLength: 0, maxLength: 3, min: 0, max: 4 }).map((k) => (k.byteLength === 0 ? b(0) : k));
      const op = fc.oneof(
        fc.record({ type: fc.constant('put' as const), key, value: fc.uint8Array({ maxLength: 3 }) }),
        fc.record({ type: fc.constant('del' as const), key }),
      );
      const range = fc.record(
        { gt: key, gte: key, lt: key, lte: key, limit: fc.integer({ min: 0, max: 6 }) },
        { requiredKeys: [] },
      ).map((r) => {
        const out: { -readonly [K in keyof KvRange]: KvRange[K] } = { ...r };
        if (out.gt !== undefined && out.gte !== undefined) delete out.gte;
        if (out.lt !== undefined && out.lte !== undefined) delete out.lte;
        return out as KvRange;
      });
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 8 }), fc.array(range, { maxLength: 3 }), async (ops, ranges) => {
          await s.write(ops);
          for (const o of ops) {
            if (o.type === 'put') model.set(hex(o.key), o.value);
            else model.delete(hex(o.key));
          }
          for (const r of ranges) expect(await all(s, r)).toEqual(modelRange(model, r));
          expect(await all(s)).toEqual(modelRange(model, {}));
        }),
        { seed: 0x5eed_4b56, numRuns: 150 },
      );
    });
  });
}
