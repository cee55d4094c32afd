import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  BLOCK_HEADER_MAX_BYTES,
  FRAGMENT_HEADER_BYTES,
  checksum64,
  decodeBlockHeader,
  decodeFragmentHeader,
  encodeBlockHeader,
  encodeFragmentHeader,
  fragmentBytes,
  verifyFragment,
} from '../src/index.js';
import { SEED, blockHeaderArb, fragmentHeaderArb } from './arbitraries.js';

describe('block header', () => {
  test('round-trips every valid header (property)', () => {
    fc.assert(
      fc.property(blockHeaderArb, (h) => {
        const bytes = encodeBlockHeader(h);
        expect(bytes.length % 8).toBe(0);
        expect(bytes.length).toBeLessThanOrEqual(BLOCK_HEADER_MAX_BYTES);
        const { header, headerLength } = decodeBlockHeader(Buffer.concat([bytes, Buffer.from('payload follows')]));
        expect(headerLength).toBe(bytes.length);
        expect(header).toEqual(h.layout === undefined ? { payloadLength: h.payloadLength, payloadChecksum: h.payloadChecksum } : h);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  test('the 40-byte fixed header without a layout', () => {
    const bytes = encodeBlockHeader({ payloadLength: 32 << 20, payloadChecksum: 42n });
    expect(bytes.length).toBe(40);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('TWBK');
  });

  test('refuses invalid fields when encoding', () => {
    expect(() => encodeBlockHeader({ payloadLength: -1, payloadChecksum: 0n })).toThrow(expect.objectContaining({ code: 'TW_HEADER_INVALID' }));
    const layout = { modelId: 'm', dtypeCode: 9, memoryFormatCode: 1, layers: 1, tokens: 1, kvHeads: 1, headDim: 1 };
    expect(() => encodeBlockHeader({ payloadLength: 1, payloadChecksum: 0n, layout })).toThrow(
      expect.objectContaining({ code: 'TW_HEADER_INVALID', details: { field: 'dtypeCode' } }),
    );
    expect(() => encodeBlockHeader({ payloadLength: 1, payloadChecksum: 0n, layout: { ...layout, dtypeCode: 3, modelId: 'x'.repeat(257) } })).toThrow(
      expect.objectContaining({ code: 'TW_HEADER_INVALID' }),
    );
  });

  test('specific malformations get specific codes', () => {
    const good = encodeBlockHeader({ payloadLength: 10, payloadChecksum: 1n });
    expect(() => decodeBlockHeader(good.subarray(0, 3))).toThrow(expect.objectContaining({ code: 'TW_HEADER_TRUNCATED' }));
    expect(() => decodeBlockHeader(good.subarray(0, 39))).toThrow(expect.objectContaining({ code: 'TW_HEADER_TRUNCATED' }));
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x41;
    expect(() => decodeBlockHeader(badMagic)).toThrow(expect.objectContaining({ code: 'TW_HEADER_BAD_MAGIC' }));
    const badVersion = Buffer.from(good);
    badVersion.writeUInt16LE(2, 4);
    expect(() => decodeBlockHeader(badVersion)).toThrow(expect.objectContaining({ code: 'TW_HEADER_BAD_VERSION' }));
    const flipped = Buffer.from(good);
    flipped[20]! ^= 1;
    expect(() => decodeBlockHeader(flipped)).toThrow(expect.objectContaining({ code: 'TW_HEADER_CHECKSUM' }));
  });
});

describe('fragment header', () => {
  test('round-trips every valid header (property)', () => {
    fc.assert(
      fc.property(fragmentHeaderArb, (h) => {
        const bytes = encodeFragmentHeader(h);
        expect(bytes.length).toBe(FRAGMENT_HEADER_BYTES);
        expect(decodeFragmentHeader(bytes)).toEqual(h);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  test('refuses inconsistent fields', () => {
    const base = {
      redundancy: { kind: 'ec' as const, k: 4, m: 2 },
      fragmentIndex: 0,
      fragmentLength: fragmentBytes({ kind: 'ec', k: 4, m: 2 }, 1000),
      keyHash: 1n,
      blockVersion: 1n,
      payloadLength: 1000,
      fragmentChecksum: 0n,
    };
    expect(() => encodeFragmentHeader(base)).not.toThrow();
    for (const bad of [
      { fragmentIndex: 6 },
      { fragmentLength: 250 },
      { redundancy: { kind: 'ec' as const, k: 17, m: 2 } },
      { redundancy: { kind: 'ec' as const, k: 4, m: 5 } },
      { redundancy: { kind: 'replicate' as const, n: 0 } },
      { keyHash: -1n },
      { blockVersion: 1n << 64n },
    ]) {
      expect(() => encodeFragmentHeader({ ...base, ...bad })).toThrow(expect.objectContaining({ code: 'TW_HEADER_INVALID' }));
    }
  });

  test('verifyFragment checks length and checksum', () => {
    const data = Buffer.alloc(256, 3);
    const h = {
      redundancy: { kind: 'replicate' as const, n: 3 },
      fragmentIndex: 2,
      fragmentLength: 256,
      keyHash: 9n,
      blockVersion: 7n,
      payloadLength: 256,
      fragmentChecksum: checksum64(data),
    };
    expect(() => verifyFragment(h, data)).not.toThrow();
    const corrupt = Buffer.from(data);
    corrupt[100]! ^= 0x10;
    expect(() => verifyFragment(h, corrupt)).toThrow(expect.objectContaining({ code: 'TW_CHECKSUM_MISMATCH' }));
    expect(() => verifyFragment(h, data.subarray(1))).toThrow(expect.objectContaining({ code: 'TW_CHECKSUM_MISMATCH' }));
  });
});
