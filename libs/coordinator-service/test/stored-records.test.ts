/**
 * packStoredRecords against the decoding path it replaces: for random block maps (random
 * records, superseded and deleted keys, TTLs, layouts, 64-bit versions and checksums) and random
 * lookups, lookupPrefixStored + packStoredRecords must give the same hit count and the same bytes
 * as lookupPrefix + recordToWire + encodeWireRecords.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Redundancy } from '@tw/block-format';
import { type BlockCommit, type Command, cachingKvStore, encodeCommand, isBlockRecordKey, memoryKvStore, openBlockMap } from '@tw/block-map';
import { encodeWireRecords } from '@tw/rpc';
import { packStoredRecords, recordToWire } from '../src/index.js';

const NODES = ['sn-0', 'sn-1', 'sn-2', 'storage-node-3.rack-b', 'sn-4', 'sn-5', 'sn-6', 'sn-7'];
const KEYS = Array.from({ length: 12 }, (_, i) => Buffer.from(i % 5 === 4 ? `ключ-${i}` : `k${i}`));
const u64 = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n });
const redundancyArb: fc.Arbitrary<Redundancy | undefined> = fc.constantFrom<Redundancy | undefined>(undefined, { kind: 'ec', k: 2, m: 1 }, { kind: 'replicate', n: 2 }, { kind: 'none' }, { kind: 'ec', k: 4, m: 2 });
const layoutArb = fc.option(
  fc.record({
    modelId: fc.string({ maxLength: 30 }),
    dtypeCode: fc.nat({ max: 8 }),
    memoryFormatCode: fc.nat({ max: 7 }),
    layers: fc.nat({ max: 0xffff_ffff }),
    tokens: fc.nat({ max: 0xffff_ffff }),
    kvHeads: fc.nat({ max: 0xffff_ffff }),
    headDim: fc.nat({ max: 0xffff_ffff }),
  }),
  { nil: null },
);
const commitArb = fc.record({
  key: fc.nat({ max: KEYS.length - 1 }),
  sizeBytes: fc.nat({ max: 1 << 30 }),
  checksum: u64,
  redundancy: redundancyArb,
  firstNode: fc.nat({ max: NODES.length - 1 }),
  layout: layoutArb,
  ttlMs: fc.constantFrom(0, 0, 50, 5000),
  pinned: fc.boolean(),
  writeVersion: fc.option(u64, { nil: undefined }),
});
const stepArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(commitArb, { minLength: 1, maxLength: 6 }).map((blocks) => ({ kind: 'commit' as const, blocks })) },
  { weight: 1, arbitrary: fc.array(fc.nat({ max: KEYS.length - 1 }), { minLength: 1, maxLength: 3 }).map((keys) => ({ kind: 'delete' as const, keys })) },
);

describe('packStoredRecords', () => {
  test('packs the same bytes as decoding the records and encoding them again', async () => {
    let hits = 0;
    let stops = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.array(fc.nat({ max: KEYS.length - 1 }), { maxLength: 10 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(0, 49, 50, 2030, 5000, 9000),
        fc.constantFrom(0, 3, 1000),
        async (steps, lookups, later, cacheEntries) => {
          // Through the coordinator's cache as in production (hits served from latin1 strings; a
          // small cache sends most reads to the inner store), or straight from a store without it.
          const inner = memoryKvStore();
          const map = await openBlockMap(cacheEntries === 0 ? inner : cachingKvStore(inner, { cacheable: isBlockRecordKey, cacheEntriesMax: cacheEntries }));
          let index = 0;
          const nowMs = 2000;
          const run = async (command: Command): Promise<void> => {
            const r = (await map.apply(++index, encodeCommand({ clientId: 0, seq: 0, nowMs, command }))).result;
            if (!r.ok) throw new Error(`${command.op}: ${r.code} ${r.message}`);
          };
          await run({ op: 'init-cluster', rules: { pgCount: 16, domainLevels: ['host'], redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host', domainCapMax: 0 } });
          // Registered out of order, so node indexes differ from string-table order.
          for (const i of [3, 0, 7, 1, 6, 2, 5, 4]) await run({ op: 'register-node', id: NODES[i]!, address: `127.0.0.1:${7000 + i}`, domain: `h${i}`, weight: 1 });
          await run({ op: 'create-namespace', name: 'ns', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'ec', k: 2, m: 1 }, tokenHash: new Uint8Array(0) });
          for (const step of steps) {
            if (step.kind === 'delete') {
              await run({ op: 'delete-blocks', namespace: 'ns', keys: step.keys.map((k) => KEYS[k]!) });
              continue;
            }
            const blocks = step.blocks.map((b): BlockCommit => {
              const r = b.redundancy ?? { kind: 'ec', k: 2, m: 1 };
              const n = r.kind === 'ec' ? r.k + r.m : r.kind === 'replicate' ? r.n : 1;
              return {
                key: KEYS[b.key]!,
                sizeBytes: b.sizeBytes,
                checksum: b.checksum,
                fragmentNodes: Array.from({ length: n }, (_, j) => NODES[(b.firstNode + j) % NODES.length]!),
                ...(b.redundancy === undefined ? {} : { redundancy: b.redundancy }),
                layout: b.layout,
                ttlMs: b.ttlMs,
                pinned: b.pinned,
                ...(b.writeVersion === undefined ? {} : { writeVersion: b.writeVersion }),
              };
            });
            await run({ op: 'commit-blocks', namespace: 'ns', blocks });
          }
          for (const lookup of lookups) {
            const keys = lookup.map((k) => KEYS[k]!);
            for (const at of [undefined, nowMs, nowMs + later]) {
              const opts = at === undefined ? {} : { nowMs: at };
              const decoded = await map.lookupPrefix('ns', keys, opts);
              const stored = await map.lookupPrefixStored('ns', keys, opts);
              expect(stored.count).toBe(decoded.count);
              hits += stored.count;
              if (stored.count > 0 && stored.count < keys.length) stops++;
              const want = encodeWireRecords(decoded.records.map(recordToWire));
              const got = packStoredRecords(keys, stored, (i) => map.nodeIdOf(i));
              expect(got.toString('hex')).toBe(want.toString('hex'));
            }
          }
        },
      ),
      { seed: 0x5704ed, numRuns: 60 },
    );
    // Not vacuous: records were packed, and prefixes stopped short of the keys asked for.
    expect(hits).toBeGreaterThan(500);
    expect(stops).toBeGreaterThan(50);
  });

  test('a stored record that does not parse is TW_BLOCKMAP_CORRUPT_STATE', () => {
    const bad = [Uint8Array.of(2), Uint8Array.of(1, 0, 0), new Uint8Array(80).fill(1)];
    for (const v of bad) {
      expect(() => packStoredRecords([Buffer.from('k')], { count: 1, bytes: v, offsets: [0, v.byteLength] }, () => 'sn-0')).toThrow(expect.objectContaining({ code: 'TW_BLOCKMAP_CORRUPT_STATE' }) as Error);
    }
  });
});
