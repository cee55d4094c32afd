/** checkFragments: the liveness answer storage-node garbage collection deletes on. */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isTwError } from '@tw/errors';
import { FRAGMENT_CHECK_MAX, type FragmentRef } from '../src/index.js';
import { Driver, STORES, type StoreHandle, enc, setupCluster } from './helpers.js';

const NODES3 = ['sn-0', 'sn-1', 'sn-2'];

describe.each(STORES)('checkFragments on %s', (_name, openStore) => {
  const handles: StoreHandle[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) await h.close();
  });
  const fresh = async (): Promise<Driver> => {
    const h = await openStore();
    handles.push(h);
    const d = await Driver.open(h.store);
    await setupCluster(d);
    return d;
  };
  const commit = (d: Driver, key: string, writeVersion: bigint, nodes: readonly string[] = NODES3) =>
    d.ok({ op: 'commit-blocks', namespace: 'ns', blocks: [{ key: enc(key), sizeBytes: 100, checksum: 1n, fragmentNodes: nodes, writeVersion }] });
  const ref = (key: string, version: bigint, index: number, namespace = 'ns'): FragmentRef => ({ namespace, key: enc(key), version, index });

  it('committed: live on the node named for that index, dead on any other node or index', async () => {
    const d = await fresh();
    await commit(d, 'a', 10n);
    const refs = [ref('a', 10n, 0), ref('a', 10n, 1), ref('a', 10n, 2), ref('a', 10n, 3)];
    expect((await d.map.checkFragments('sn-0', refs)).liveness).toEqual(['live', 'dead', 'dead', 'dead']);
    expect((await d.map.checkFragments('sn-1', refs)).liveness).toEqual(['dead', 'live', 'dead', 'dead']);
    expect((await d.map.checkFragments('sn-5', refs)).liveness).toEqual(['dead', 'dead', 'dead', 'dead']);
  });

  it('never committed (an orphan), another version of a committed key, an unknown namespace: dead', async () => {
    const d = await fresh();
    await commit(d, 'a', 10n);
    const r = await d.map.checkFragments('sn-0', [ref('orphan', 5n, 0), ref('a', 11n, 0), ref('a', 9n, 0), ref('a', 10n, 0, 'nope')]);
    expect(r.liveness).toEqual(['dead', 'dead', 'dead', 'dead']);
  });

  it('superseded: live until purged, then dead; the newer version is live', async () => {
    const d = await fresh();
    await commit(d, 'a', 10n);
    await commit(d, 'a', 20n, ['sn-3', 'sn-4', 'sn-5']);
    // 'a' plus a longer key sharing its bytes: the garbage scan must not confuse them.
    await commit(d, 'ab', 10n, ['sn-1', 'sn-0', 'sn-2']);
    await commit(d, 'ab', 30n);
    expect((await d.map.checkFragments('sn-0', [ref('a', 10n, 0), ref('a', 20n, 0), ref('ab', 10n, 0), ref('ab', 10n, 1)])).liveness).toEqual(['live', 'dead', 'dead', 'live']);
    expect((await d.map.checkFragments('sn-3', [ref('a', 20n, 0), ref('a', 10n, 0)])).liveness).toEqual(['live', 'dead']);
    d.nowMs += 120_000;
    const candidates = await d.map.listPurgeable({ nowMs: d.nowMs, graceMs: 60_000 });
    await d.ok({ op: 'purge-blocks', graceMs: 60_000, refs: candidates.map((c) => ({ namespace: c.namespace, key: c.key, version: c.version })) }, 0);
    expect((await d.map.checkFragments('sn-0', [ref('a', 10n, 0), ref('ab', 10n, 1), ref('ab', 30n, 0)])).liveness).toEqual(['dead', 'dead', 'live']);
    expect((await d.map.checkFragments('sn-3', [ref('a', 20n, 0)])).liveness).toEqual(['live']);
  });

  it('deleted: live while deleting (in-flight reads), dead once purged', async () => {
    const d = await fresh();
    await commit(d, 'a', 10n);
    await d.ok({ op: 'delete-blocks', namespace: 'ns', keys: [enc('a')] });
    expect((await d.map.checkFragments('sn-1', [ref('a', 10n, 1)])).liveness).toEqual(['live']);
    d.nowMs += 120_000;
    const candidates = await d.map.listPurgeable({ nowMs: d.nowMs, graceMs: 60_000 });
    expect(candidates).toHaveLength(1);
    await d.ok({ op: 'purge-blocks', graceMs: 60_000, refs: candidates.map((c) => ({ namespace: c.namespace, key: c.key, version: c.version })) }, 0);
    expect((await d.map.checkFragments('sn-1', [ref('a', 10n, 1)])).liveness).toEqual(['dead']);
  });

  it('a node outside the cluster map gets unknown for everything (and registeredAt 0); members get their registration time', async () => {
    const d = await fresh();
    await commit(d, 'a', 10n);
    const stranger = await d.map.checkFragments('sn-99', [ref('orphan', 1n, 0), ref('a', 10n, 0)]);
    expect(stranger).toEqual({ liveness: ['unknown', 'unknown'], nodeRegisteredAtMs: 0 });
    expect((await d.map.checkFragments('sn-0', [])).nodeRegisteredAtMs).toBe(1_000_000);
  });

  it('malformed refs are unknown, never dead; too many refs is a coded error', async () => {
    const d = await fresh();
    const r = await d.map.checkFragments('sn-0', [ref('a', 1n, 256), ref('a', 1n, -1), { namespace: 'ns', key: new Uint8Array(0), version: 1n, index: 0 }, ref('a', 1n, 0, 'bad name!')]);
    expect(r.liveness).toEqual(['unknown', 'unknown', 'unknown', 'unknown']);
    const many = Array.from({ length: FRAGMENT_CHECK_MAX + 1 }, (_, i) => ref(`k${i}`, 1n, 0));
    await expect(d.map.checkFragments('sn-0', many)).rejects.toSatisfy((e: unknown) => isTwError(e, 'TW_BLOCKMAP_BAD_QUERY'));
  });
});

describe('checkFragments against a reference model', () => {
  it('agrees with a naive model over random commit / supersede / delete / purge histories', async () => {
    const versionArb = fc.bigInt({ min: 1n, max: 6n });
    const op = fc.oneof(
      fc.record({ t: fc.constant('commit' as const), key: fc.constantFrom('a', 'b', 'ab'), v: versionArb, nodes: fc.shuffledSubarray(['sn-0', 'sn-1', 'sn-2', 'sn-3', 'sn-4', 'sn-5'], { minLength: 3, maxLength: 3 }) }),
      fc.record({ t: fc.constant('delete' as const), key: fc.constantFrom('a', 'b', 'ab') }),
      fc.record({ t: fc.constant('purge' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        const { memoryKvStore } = await import('../src/index.js');
        const d = await Driver.open(memoryKvStore());
        await setupCluster(d);
        // Model: every version not yet purged, with its nodes; `current` per key.
        const kept: { key: string; v: bigint; nodes: readonly string[]; sinceMs: number }[] = [];
        const current = new Map<string, { v: bigint; nodes: readonly string[]; deleting: boolean }>();
        for (const o of ops) {
          d.nowMs += 10_000;
          if (o.t === 'commit') {
            const prev = current.get(o.key);
            if (prev !== undefined && !prev.deleting) kept.find((x) => x.key === o.key && x.v === prev.v && x.sinceMs === -1)!.sinceMs = d.nowMs;
            await d.ok({ op: 'commit-blocks', namespace: 'ns', blocks: [{ key: enc(o.key), sizeBytes: 1, checksum: 1n, fragmentNodes: o.nodes, writeVersion: o.v }] });
            kept.push({ key: o.key, v: o.v, nodes: o.nodes, sinceMs: -1 });
            current.set(o.key, { v: o.v, nodes: o.nodes, deleting: false });
          } else if (o.t === 'delete') {
            const prev = current.get(o.key);
            await d.ok({ op: 'delete-blocks', namespace: 'ns', keys: [enc(o.key)] });
            if (prev !== undefined && !prev.deleting) {
              prev.deleting = true;
              kept.find((x) => x.key === o.key && x.v === prev.v && x.sinceMs === -1)!.sinceMs = d.nowMs;
            }
          } else {
            const c = await d.map.listPurgeable({ nowMs: d.nowMs, graceMs: 15_000 });
            await d.ok({ op: 'purge-blocks', graceMs: 15_000, refs: c.map((x) => ({ namespace: x.namespace, key: x.key, version: x.version })) }, 0);
            for (let i = kept.length - 1; i >= 0; i--) if (kept[i]!.sinceMs !== -1 && kept[i]!.sinceMs + 15_000 <= d.nowMs) kept.splice(i, 1);
            for (const [k, c2] of current) if (c2.deleting && !kept.some((x) => x.key === k && x.v === c2.v)) current.delete(k);
          }
        }
        for (const node of ['sn-0', 'sn-3']) {
          const refs: FragmentRef[] = [];
          for (const key of ['a', 'b', 'ab']) for (let v = 1n; v <= 6n; v++) for (let index = 0; index < 3; index++) refs.push({ namespace: 'ns', key: enc(key), version: v, index });
          const got = (await d.map.checkFragments(node, refs)).liveness;
          const want = refs.map((r) => {
            const key = Buffer.from(r.key).toString();
            // A version committed twice for one key (same v, later commit) counts once: any kept copy naming the node is enough.
            const copies = kept.filter((x) => x.key === key && x.v === r.version);
            if (copies.length === 0) return 'dead';
            return copies.some((x) => x.nodes[r.index] === node) ? 'live' : 'dead';
          });
          // Repeated equal versions of one key are ambiguous (the map answers from the first match): skip those refs.
          const ambiguous = refs.map((r) => kept.filter((x) => x.key === Buffer.from(r.key).toString() && x.v === r.version).length > 1);
          expect(got.filter((_, i) => !ambiguous[i])).toEqual(want.filter((_, i) => !ambiguous[i]));
        }
      }),
      { seed: 0x5eed6, numRuns: 60 },
    );
  });
});
