import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type WireBlockCommit, type WireRecord, decodeWireCommits, decodeWireRecords, decodeWireVersions, encodeWireCommits, encodeWireRecords, encodeWireVersions } from '../src/index.js';

const safe = fc.maxSafeNat();
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.nat({ max: 0xffff_ffff });
const nodeArb = fc.constantFrom('sn-0', 'sn-1', 'sn-2', 'nœud-3', 'a'.repeat(300));
const layoutArb = fc.option(
  fc.record({ modelId: fc.string({ maxLength: 40 }), dtypeCode: u32, memoryFormatCode: u32, layers: u32, tokens: u32, kvHeads: u32, headDim: u32 }),
  { nil: null },
);
const keyArb = fc.uint8Array({ minLength: 1, maxLength: 300 });

const recordArb: fc.Arbitrary<WireRecord> = fc.record({
  key: keyArb,
  version: u64,
  mapVersion: safe,
  sizeBytes: safe,
  checksum: u64,
  redundancy: fc.constantFrom('ec:4+2', 'replicate:3', 'none'),
  fragmentNodes: fc.array(nodeArb, { maxLength: 12 }),
  state: fc.constantFrom('committed' as const, 'deleting' as const),
  createdAtMs: safe,
  lastAccessMs: safe,
  ttlMs: safe,
  pinned: fc.boolean(),
  layout: layoutArb,
});

const commitArb: fc.Arbitrary<WireBlockCommit> = fc.record({
  key: keyArb,
  sizeBytes: safe,
  checksum: u64,
  redundancy: fc.constantFrom('', 'ec:4+2', 'replicate:3'),
  fragmentNodes: fc.array(nodeArb, { maxLength: 12 }),
  layout: layoutArb,
  ttlMs: safe,
  pinned: fc.boolean(),
  version: u64,
});

const plain = <T extends { key: Uint8Array }>(xs: readonly T[]): unknown[] => xs.map((x) => ({ ...x, key: Buffer.from(x.key).toString('hex') }));

describe('packed records', () => {
  it('round-trips records, commits and versions', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 20 }), fc.array(commitArb, { maxLength: 20 }), fc.array(u64, { maxLength: 20 }), (records, commits, versions) => {
        expect(plain(decodeWireRecords(encodeWireRecords(records)))).toEqual(plain(records));
        expect(plain(decodeWireCommits(encodeWireCommits(commits)))).toEqual(plain(commits));
        expect(decodeWireVersions(encodeWireVersions(versions))).toEqual(versions);
      }),
      { seed: 0x9ac4ed, numRuns: 200 },
    );
  });

  it('refuses truncated, extended or mutated bytes with TW_RPC_BAD_PACKED (never another error)', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 4 }), fc.array(commitArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (records, commits, at, byte) => {
        for (const [bytes, decode] of [
          [encodeWireRecords(records), decodeWireRecords],
          [encodeWireCommits(commits), decodeWireCommits],
        ] as const) {
          const cut = bytes.subarray(0, at % bytes.length);
          expect(() => decode(cut)).toThrow(expect.objectContaining({ code: 'TW_RPC_BAD_PACKED' }) as Error);
          expect(() => decode(Buffer.concat([bytes, Buffer.of(byte)]))).toThrow(expect.objectContaining({ code: 'TW_RPC_BAD_PACKED' }) as Error);
          const mutated = Buffer.from(bytes);
          mutated[at % mutated.length] = byte;
          try {
            decode(mutated);
          } catch (err) {
            expect((err as { code?: string }).code).toBe('TW_RPC_BAD_PACKED');
          }
        }
      }),
      { seed: 0xbad9ac, numRuns: 300 },
    );
  });

  it('refuses numbers that JavaScript cannot hold exactly', () => {
    const r = { key: Buffer.from('k'), version: 1n, mapVersion: 1, sizeBytes: 2 ** 53, checksum: 0n, redundancy: 'none', fragmentNodes: [], state: 'committed' as const, createdAtMs: 0, lastAccessMs: 0, ttlMs: 0, pinned: false, layout: null };
    expect(() => encodeWireRecords([r])).toThrow(expect.objectContaining({ code: 'TW_RPC_BAD_PACKED' }) as Error);
  });
});
