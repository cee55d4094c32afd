import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type LookupPrefixRequestMsg,
  type WireBlockCommit,
  type WireRecord,
  decodeWireCommits,
  decodeWireKeys,
  decodeWireRecords,
  decodeWireVersions,
  encodeWireCommits,
  encodeWireKeys,
  encodeWireRecords,
  encodeWireVersions,
  wireKeyCount,
} from '../src/index.js';

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

describe('packed keys', () => {
  // The LookupPrefix request codec gRPC uses (same loader options as src/proto.ts).
  const def = protoLoader.loadSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'proto', 'coordinator.proto'), {
    keepCase: false, longs: String, enums: String, defaults: true, arrays: true, objects: false, oneofs: true, bytes: Buffer,
  });
  const method = (def['tw.coordinator.v1.Coordinator'] as unknown as Record<string, { requestSerialize(m: unknown): Buffer; requestDeserialize(b: Buffer): LookupPrefixRequestMsg }>)['LookupPrefix']!;
  const wire = (m: Partial<LookupPrefixRequestMsg>): LookupPrefixRequestMsg => method.requestDeserialize(method.requestSerialize({ namespace: 'ns', token: '', includeRecords: true, ...m }));
  const keysArb = fc.array(fc.uint8Array({ minLength: 0, maxLength: 600 }), { maxLength: 64 });
  const hex = (ks: readonly Uint8Array[]): string[] => ks.map((k) => Buffer.from(k).toString('hex'));

  it('carry over gRPC the same keys as the message form', () => {
    fc.assert(
      fc.property(keysArb, (keys) => {
        const asMessages = wire({ keys: keys.map((k) => Buffer.from(k)) });
        const asPacked = wire({ keys: [], packedKeys: encodeWireKeys(keys) });
        expect(asPacked.keys).toEqual([]);
        expect(wireKeyCount(asPacked.packedKeys!)).toBe(keys.length);
        expect(hex(decodeWireKeys(asPacked.packedKeys!))).toEqual(hex(asMessages.keys));
        // A request without packed keys reads as an empty field (what old clients send).
        expect(asMessages.packedKeys!.length).toBe(0);
      }),
      { seed: 0x6b3e75, numRuns: 200 },
    );
  });

  it('refuse truncated, extended or mutated bytes with TW_RPC_BAD_PACKED (never another error)', () => {
    fc.assert(
      fc.property(keysArb.filter((k) => k.length > 0), fc.nat(), fc.integer({ min: 0, max: 255 }), (keys, at, byte) => {
        const bytes = encodeWireKeys(keys);
        const isBad = expect.objectContaining({ code: 'TW_RPC_BAD_PACKED' }) as Error;
        expect(() => decodeWireKeys(bytes.subarray(0, at % bytes.length))).toThrow(isBad);
        expect(() => decodeWireKeys(Buffer.concat([bytes, Buffer.of(byte)]))).toThrow(isBad);
        const mutated = Buffer.from(bytes);
        mutated[at % mutated.length] = byte;
        try {
          const got = decodeWireKeys(mutated);
          expect(got.reduce((n, k) => n + 2 + k.length, 4)).toBe(mutated.length);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('TW_RPC_BAD_PACKED');
        }
      }),
      { seed: 0x5eed6b, numRuns: 300 },
    );
    expect(() => wireKeyCount(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'TW_RPC_BAD_PACKED' }) as Error);
    // A count that no message of this length can hold is refused before anything is allocated.
    expect(() => decodeWireKeys(Buffer.from([0xff, 0xff, 0xff, 0x7f, 0, 0]))).toThrow(expect.objectContaining({ code: 'TW_RPC_BAD_PACKED' }) as Error);
  });
});
