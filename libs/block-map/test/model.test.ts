/**
 * Differential property test: random sequences of namespace and block commands (with retries
 * and bad input) go through the real BlockMap on a memory store AND on classic-level, and
 * through a naive reference model. Every result must agree (the two stores byte for byte,
 * the model by outcome), and at the end so must every query, the state digests of the two
 * stores, and a BlockMap restored from a snapshot of the state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Redundancy } from '@tw/block-format';
import { type BlockCommit, type BlockMap, type Command, type CommandResult, encodeCommand, memoryKvStore, openBlockMap } from '../src/index.js';
import { Driver, NODES, levelStore, setupCluster } from './helpers.js';
import { ReferenceModel } from './reference-model.js';

const SEED = 0x0b10c_3a9;
const NAMES = ['ns', 'n2', 'n3', 'Bad!'];
const KEYS = ['a', 'b', 'c', 'd', 'e'].map((k) => Uint8Array.from(Buffer.from(k)));
const REDUNDANCIES: Redundancy[] = [{ kind: 'ec', k: 2, m: 1 }, { kind: 'replicate', n: 2 }, { kind: 'none' }, { kind: 'ec', k: 0, m: 1 }];

const name = fc.oneof({ weight: 8, arbitrary: fc.constant('ns') }, { weight: 2, arbitrary: fc.constant('n2') }, { weight: 1, arbitrary: fc.constantFrom(...NAMES) });
const key = fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) });
const redundancy = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...REDUNDANCIES.slice(0, 3)) }, { weight: 1, arbitrary: fc.constant(REDUNDANCIES[3]!) });

const blockCommit: fc.Arbitrary<BlockCommit> = fc
  .record({
    key,
    sizeBytes: fc.constantFrom(0, 1, 100, 499, 500, 1000, 2000),
    checksum: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    redundancy: fc.option(redundancy, { nil: undefined, freq: 2 }),
    nodeShift: fc.integer({ min: 0, max: 5 }),
    nodeMode: fc.oneof({ weight: 20, arbitrary: fc.constant('right') }, { weight: 1, arbitrary: fc.constantFrom('ghost', 'short') }),
    ttlMs: fc.option(fc.constantFrom(0, 1000), { nil: undefined }),
    pinned: fc.boolean(),
    writeVersion: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
  })
  .map((r) => {
    // Node count follows the record's redundancy, else ec:2+1 (most namespaces use it).
    const want = r.redundancy === undefined ? 3 : r.redundancy.kind === 'ec' ? r.redundancy.k + r.redundancy.m : r.redundancy.kind === 'replicate' ? r.redundancy.n : 1;
    let nodes = Array.from({ length: Math.max(0, want) }, (_, i) => NODES[(r.nodeShift + i) % NODES.length]!);
    if (r.nodeMode === 'ghost' && nodes.length > 0) nodes[0] = 'ghost';
    if (r.nodeMode === 'short') nodes = nodes.slice(1);
    return {
      key: r.key,
      sizeBytes: r.sizeBytes,
      checksum: r.checksum,
      ...(r.writeVersion === undefined ? {} : { writeVersion: r.writeVersion }),
      fragmentNodes: nodes,
      pinned: r.pinned,
      ...(r.redundancy === undefined ? {} : { redundancy: r.redundancy }),
      ...(r.ttlMs === undefined ? {} : { ttlMs: r.ttlMs }),
    };
  });

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('create-namespace' as const), name, quotaBytes: fc.option(fc.constantFrom(0, 100, 500, 1000, 1001, 2000, 3000), { nil: null }), defaultTtlMs: fc.constantFrom(0, 500), redundancy, tokenHash: fc.uint8Array({ maxLength: 66 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('update-namespace' as const), name, quotaBytes: fc.option(fc.constantFrom(0, 100, 500, 1000, 1001, 2000, 3000), { nil: null }) }, { requiredKeys: ['op', 'name'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete-namespace' as const), name }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('commit-blocks' as const), namespace: name, blocks: fc.array(blockCommit, { maxLength: 4, size: 'max' }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete-blocks' as const), namespace: name, keys: fc.array(key, { maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('touch-blocks' as const), namespace: name, keys: fc.array(key, { maxLength: 4 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('purge-blocks' as const),
      graceMs: fc.constantFrom(0, 50_000, 60_000),
      refs: fc.array(fc.record({ namespace: name, key, version: fc.integer({ min: 1, max: 30 }) }), { maxLength: 4 }),
    }),
  },
);

interface Step {
  readonly clientId: number;
  /** Retry the step this many steps back instead (when it exists). */
  readonly retryBack: number;
  readonly dtMs: number;
  readonly command: Command;
  /** For a purge: name every version now deleting instead of random refs (exercises the grace check). */
  readonly autoRefs: boolean;
}
const step: fc.Arbitrary<Step> = fc.record({
  clientId: fc.constantFrom(0, 1, 2, 3),
  retryBack: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }) }),
  dtMs: fc.constantFrom(0, 1, 10_000, 30_000, 60_000),
  command,
  autoRefs: fc.boolean(),
});

const strip = (r: CommandResult): unknown => (r.ok ? r : { ok: false, code: r.code });

async function compareQueries(a: BlockMap, b: BlockMap): Promise<void> {
  expect(a.appliedIndex).toBe(b.appliedIndex);
  expect(b.namespaces()).toEqual(a.namespaces());
  for (const ns of a.namespaces()) {
    expect((await b.listBlocks(ns.name, { limit: 100 })).records).toEqual((await a.listBlocks(ns.name, { limit: 100 })).records);
    expect(await b.lookupPrefix(ns.name, KEYS)).toEqual(await a.lookupPrefix(ns.name, KEYS));
  }
  expect(await b.listPurgeable({ nowMs: 1e13, graceMs: 0 })).toEqual(await a.listPurgeable({ nowMs: 1e13, graceMs: 0 }));
  expect(b.clusterMap()).toEqual(a.clusterMap());
  expect(await b.stateDigest()).toBe(await a.stateDigest());
}

describe('BlockMap against a reference model', () => {
  it('agrees on every result and the final state, on both stores; snapshots restore it exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 50, size: 'max' }), fc.integer({ min: 4096, max: 20_000 }), async (steps, chunkBytes) => {
        const level = await levelStore();
        try {
          const mem = await Driver.open(memoryKvStore());
          const lvl = await Driver.open(level.store);
          await setupCluster(mem);
          await setupCluster(lvl);
          const model = new ReferenceModel(new Set(NODES));
          // setupCluster created `ns` through the maps; mirror it in the model.
          model.apply(0, 0, mem.nowMs, { op: 'create-namespace', name: 'ns', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'ec', k: 2, m: 1 }, tokenHash: new Uint8Array(32) });
          const sent: { clientId: number; seq: number; nowMs: number; command: Command; bytes: Uint8Array }[] = [];
          const seqs = new Map<number, number>();
          let now = mem.nowMs;
          for (const s of steps) {
            now += s.dtMs;
            const prior = s.retryBack > 0 ? sent[sent.length - s.retryBack] : undefined;
            let entry;
            if (prior !== undefined && prior.clientId !== 0) {
              entry = prior;
            } else {
              const seq = s.clientId === 0 ? 0 : (seqs.get(s.clientId) ?? 0) + 1;
              seqs.set(s.clientId, seq);
              let c = s.command;
              if (c.op === 'purge-blocks' && s.autoRefs) {
                const refs = (await mem.map.listPurgeable({ nowMs: 1e13, graceMs: 0, limit: 8 })).map((p) => ({ namespace: p.namespace, key: p.key, version: p.version }));
                c = { ...c, refs };
              }
              entry = { clientId: s.clientId, seq, nowMs: now, command: c, bytes: encodeCommand({ clientId: s.clientId, seq, nowMs: now, command: c }) };
              sent.push(entry);
            }
            const a = await mem.applyBytes(entry.bytes);
            const b = await lvl.applyBytes(entry.bytes);
            const m = model.apply(entry.clientId, entry.seq, entry.nowMs, entry.command);
            expect(b).toEqual(a);
            expect(a.duplicate).toBe(m.duplicate);
            expect(strip(a.result)).toEqual(strip(m.result));
          }
          // Final state: the model's view.
          const names = [...model.namespaces.keys()].sort();
          expect(mem.map.namespaces()).toEqual(names.map((n) => model.namespaces.get(n)));
          for (const n of names) {
            expect((await mem.map.listBlocks(n, { limit: 100 })).records).toEqual(model.blocksOf(n));
            for (let i = 0; i < KEYS.length; i++) {
              const keys = [...KEYS.slice(i), ...KEYS.slice(0, i)];
              expect((await mem.map.lookupPrefix(n, keys)).count).toBe(model.lookup(n, keys));
            }
          }
          const purgeable = await mem.map.listPurgeable({ nowMs: 1e13, graceMs: 0, limit: 10_000 });
          expect(purgeable.map((p) => `${p.namespace}/${Buffer.from(p.key).toString('hex')}/${p.version}@${p.deletingSinceMs}`).sort()).toEqual(model.deleting());
          // The two stores hold the same bytes.
          await compareQueries(mem.map, lvl.map);
          // Snapshot -> restore -> the same answers (memory -> level and level -> memory).
          const restoredMem = await openBlockMap(memoryKvStore());
          expect(await restoredMem.restoreFromChunks(lvl.map.snapshotChunks(chunkBytes))).toBe(lvl.map.appliedIndex);
          await compareQueries(mem.map, restoredMem);
          const level2 = await levelStore();
          try {
            const restoredLvl = await openBlockMap(level2.store);
            await restoredLvl.restoreFromChunks(mem.map.snapshotChunks(chunkBytes));
            await compareQueries(mem.map, restoredLvl);
          } finally {
            await level2.close();
          }
        } finally {
          await level.close();
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});
