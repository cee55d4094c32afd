import { describe, expect, test } from 'vitest';
import type { BlockRecord } from '@tw/block-map';
import { layoutFromMsg, layoutToMsg, recordToMsg, redundancyFrom, u64 } from '../src/index.js';

describe('wire conversions', () => {
  test('u64 strings: accepted up to 2^53, refused otherwise with a coded error naming the field', () => {
    expect(u64('f', '')).toBe(0);
    expect(u64('f', '9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of ['9007199254740993', '-1', '1e3', 'abc', '12345678901234567']) {
      expect(() => u64('blocks[0].sizeBytes', bad)).toThrow(expect.objectContaining({ code: 'TW_COORD_BAD_REQUEST', message: expect.stringContaining('blocks[0].sizeBytes') }));
    }
  });

  test('redundancy strings', () => {
    expect(redundancyFrom('r', 'ec:4+2')).toEqual({ kind: 'ec', k: 4, m: 2 });
    expect(() => redundancyFrom('namespace.redundancy', 'raid5')).toThrow(expect.objectContaining({ code: 'TW_COORD_BAD_REQUEST' }));
  });

  test('records keep the writer version (64-bit) as the wire version and the map version apart', () => {
    const rec: BlockRecord = {
      namespace: 'default',
      key: new Uint8Array([1, 2]),
      version: 17,
      writeVersion: (1n << 63n) + 9n,
      sizeBytes: 1 << 25,
      checksum: (1n << 64n) - 1n,
      layout: { modelId: 'm', dtypeCode: 3, memoryFormatCode: 1, layers: 32, tokens: 256, kvHeads: 8, headDim: 128 },
      redundancy: { kind: 'ec', k: 4, m: 2 },
      fragmentNodes: ['a', 'b', 'c', 'd', 'e', 'f'],
      state: 'committed',
      createdAtMs: 1,
      lastAccessMs: 2,
      ttlMs: 0,
      pinned: true,
      deletingSinceMs: 0,
    };
    const msg = recordToMsg(rec, 5);
    expect(msg).toMatchObject({ version: String((1n << 63n) + 9n), mapVersion: '17', checksum: '18446744073709551615', redundancy: 'ec:4+2', pg: 5, pinned: true, state: 'BLOCK_STATE_COMMITTED' });
    expect(layoutFromMsg(layoutToMsg(rec.layout))).toEqual(rec.layout);
    expect(layoutFromMsg(null)).toBeNull();
  });
});
