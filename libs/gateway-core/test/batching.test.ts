/** Commit and lookup batching against a scripted coordinator (seeded property test). */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type BlockCommitMsg, type CoordinatorUnary, decodeWireKeys } from '@tw/rpc';
import { CommitBatcher, type GatewayCoordinator, LookupBatcher } from '../src/index.js';

interface Call {
  namespace: string;
  keys: string[];
  finish: () => void;
}

function fakeCoordinator(present: Set<string> = new Set()): { coordinator: GatewayCoordinator; calls: Call[]; concurrentSameNs: number } {
  const calls: Call[] = [];
  const inflight = new Map<string, number>();
  const state = { concurrentSameNs: 0 };
  const coordinator: GatewayCoordinator = {
    async call(method, request) {
      if (method === 'commitBlocks') {
        const req = request as CoordinatorUnary['commitBlocks'][0];
        const n = (inflight.get(req.namespace) ?? 0) + 1;
        inflight.set(req.namespace, n);
        if (n > 1) state.concurrentSameNs++;
        let finish!: () => void;
        const done = new Promise<void>((r) => (finish = r));
        calls.push({ namespace: req.namespace, keys: req.blocks.map((b) => b.key.toString()), finish });
        await done;
        inflight.set(req.namespace, inflight.get(req.namespace)! - 1);
        return { results: req.blocks.map((b) => ({ version: b.version, errorCode: '', errorMessage: '', superseded: [] })), index: '1' } as never;
      }
      if (method === 'lookupPrefix') {
        const req = request as CoordinatorUnary['lookupPrefix'][0];
        // Keys packed (as the gateway sends them) or as messages.
        const keys = req.packedKeys !== undefined && req.packedKeys.length > 0 ? decodeWireKeys(req.packedKeys) : req.keys;
        calls.push({ namespace: req.namespace, keys: keys.map((k) => k.toString()), finish: () => undefined });
        let hits = 0;
        while (hits < keys.length && present.has(keys[hits]!.toString())) hits++;
        const records = keys.slice(0, hits).map((k) => ({
          namespace: req.namespace,
          key: k,
          version: '5',
          sizeBytes: '10',
          checksum: '1',
          redundancy: 'ec:4+2',
          fragmentNodes: ['a', 'b', 'c', 'd', 'e', 'f'],
          state: 'BLOCK_STATE_COMMITTED',
          createdAtMs: '0',
          lastAccessMs: '0',
          ttlMs: '0',
          pinned: false,
          layout: null,
          pg: 0,
          mapVersion: '1',
        }));
        return { hits, records, appliedIndex: '1', keysRead: keys.length } as never;
      }
      throw new Error(`unexpected ${method}`);
    },
    watchClusterMap: () => () => undefined,
  };
  return {
    coordinator,
    calls,
    get concurrentSameNs() {
      return state.concurrentSameNs;
    },
  };
}

const block = (key: string): BlockCommitMsg => ({ key: Buffer.from(key), sizeBytes: '1', checksum: '0', redundancy: 'ec:4+2', fragmentNodes: [], layout: null, ttlMs: '0', pinned: false, version: '1' });
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('CommitBatcher', () => {
  test('property: every commit settles once, in order per namespace, one call per namespace at a time, batches bounded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('ns-a', 'ns-b', 'ns-c'), { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 9 }), async (namespaces, batchMax) => {
        const fake = fakeCoordinator();
        let batches = 0;
        const b = new CommitBatcher(fake.coordinator, 'gw', 0, batchMax, () => batches++);
        const settled: string[] = [];
        const all = namespaces.map((ns, i) => b.commit(ns, block(`${ns}:${i}`)).then(() => settled.push(`${ns}:${i}`)));
        // Drive: finish calls one at a time in arrival order until everything settled.
        for (let guard = 0; guard < 1000 && settled.length < namespaces.length; guard++) {
          await tick();
          const open = fake.calls.find((c) => c.finish !== undefined);
          if (open !== undefined) {
            open.finish();
            (open as { finish?: () => void }).finish = undefined;
          }
        }
        await Promise.all(all);
        expect(fake.concurrentSameNs).toBe(0);
        for (const c of fake.calls) expect(c.keys.length).toBeLessThanOrEqual(batchMax);
        const sent = fake.calls.flatMap((c) => c.keys);
        expect(sent.sort()).toEqual(namespaces.map((ns, i) => `${ns}:${i}`).sort());
        for (const ns of new Set(namespaces)) {
          const order = fake.calls.filter((c) => c.namespace === ns).flatMap((c) => c.keys.map((k) => Number(k.split(':')[1])));
          expect([...order].sort((x, y) => x - y)).toEqual(order);
        }
        expect(batches).toBe(fake.calls.length);
      }),
      { seed: 0xc0ffee, numRuns: 60 },
    );
  });

  test('commits made in one window go out as one call', async () => {
    const fake = fakeCoordinator();
    const b = new CommitBatcher(fake.coordinator, 'gw', 5, 100, () => undefined);
    const ps = Array.from({ length: 10 }, (_, i) => b.commit('ns', block(`k${i}`)));
    for (let i = 0; i < 100 && fake.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    expect(fake.calls.length).toBe(1);
    expect(fake.calls[0]!.keys.length).toBe(10);
    fake.calls[0]!.finish();
    await Promise.all(ps);
  });
});

describe('LookupBatcher', () => {
  test('lookups of one turn share calls; each round settles at least one key', async () => {
    const present = new Set(['a', 'b', 'd']);
    const fake = fakeCoordinator(present);
    const l = new LookupBatcher(fake.coordinator, () => undefined);
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const got = await Promise.all(keys.map((k) => l.lookup('ns', Buffer.from(k))));
    expect(got.map((r) => r?.version)).toEqual([5n, 5n, undefined, 5n, undefined]);
    // a,b hit and c misses in round 1; d hits and e misses in round 2.
    expect(fake.calls.map((c) => c.keys)).toEqual([['a', 'b', 'c', 'd', 'e'], ['d', 'e']]);
  });
});
