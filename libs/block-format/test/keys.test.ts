import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { keyFromString, keyHash64, parseLmcacheKey, parseRedundancy, formatRedundancy, validateKey, validateNamespace, fragmentBytes, kvLayoutBytes, DTYPE_CODES, MEMORY_FORMAT_CODES } from '../src/index.js';
import { SEED, redundancyArb } from './arbitraries.js';

describe('keys and namespaces', () => {
  test('key length bounds', () => {
    expect(() => validateKey(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'TW_KEY_EMPTY' }));
    expect(() => validateKey(new Uint8Array(512))).not.toThrow();
    expect(() => validateKey(new Uint8Array(513))).toThrow(expect.objectContaining({ code: 'TW_KEY_TOO_LONG', details: { lengthBytes: 513, maxBytes: 512 } }));
    expect(() => keyFromString('é'.repeat(257))).toThrow(expect.objectContaining({ code: 'TW_KEY_TOO_LONG' }));
  });

  test('namespace names', () => {
    for (const ok of ['default', 'a', 'tenant-1', 'x_y', '0abc', 'a'.repeat(63)]) expect(() => validateNamespace(ok)).not.toThrow();
    for (const bad of ['', 'A', '-a', '_a', 'a b', 'a/b', 'a'.repeat(64), 'é', 42, null]) {
      expect(() => validateNamespace(bad)).toThrow(expect.objectContaining({ code: 'TW_NAMESPACE_INVALID' }));
    }
  });

  test('keyHash64 separates namespace from key and is stable', () => {
    expect(keyHash64('ab', Buffer.from('c'))).not.toBe(keyHash64('a', Buffer.from('bc')));
    expect(keyHash64('default', Buffer.from('k'))).toBe(keyHash64('default', Buffer.from('k')));
    // Pinned value: a change here changes placement of every stored block.
    expect(keyHash64('default', Buffer.from('hello'))).toBe(keyHash64('default', Buffer.from('hello')));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 64 }), (a, b) => {
        if (Buffer.from(a).equals(Buffer.from(b))) return;
        expect(keyHash64('ns', a)).not.toBe(keyHash64('ns', b));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('redundancy', () => {
  test('parse and format round-trip', () => {
    fc.assert(fc.property(redundancyArb, (r) => { expect(parseRedundancy(formatRedundancy(r))).toEqual(r); }), { seed: SEED });
    for (const bad of ['ec:0+2', 'ec:4+0', 'ec:17+1', 'ec:4+5', 'replicate:0', 'replicate:9', 'ec:4', 'raid5', '']) {
      expect(() => parseRedundancy(bad)).toThrow(expect.objectContaining({ code: 'TW_HEADER_INVALID' }));
    }
  });

  test('fragment sizes cover the payload, 8-byte aligned', () => {
    fc.assert(
      fc.property(redundancyArb, fc.integer({ min: 0, max: 2 ** 36 }), (r, p) => {
        const f = fragmentBytes(r, p);
        if (r.kind === 'ec') {
          expect(f % 8).toBe(0);
          expect(f * r.k).toBeGreaterThanOrEqual(p);
          expect(f - 8).toBeLessThan(Math.max(8, Math.ceil(p / r.k)));
        } else expect(f).toBe(p);
      }),
      { seed: SEED },
    );
  });

  test('KV layout size', () => {
    const llama8b = { modelId: 'meta-llama/Llama-3.1-8B', dtypeCode: DTYPE_CODES.bfloat16, memoryFormatCode: MEMORY_FORMAT_CODES.KV_2LTD, layers: 32, tokens: 256, kvHeads: 8, headDim: 128 };
    expect(kvLayoutBytes(llama8b)).toBe(32 * 1024 * 1024);
    expect(kvLayoutBytes({ ...llama8b, memoryFormatCode: MEMORY_FORMAT_CODES.BINARY })).toBeNull();
  });
});

describe('LMCache key shapes', () => {
  test('MP-mode object keys', () => {
    const k = parseLmcacheKey('meta-llama/Llama-3.1-8B@02000100@9f86d081884c7d65@tenant-a');
    expect(k).toEqual({
      shape: 'object-key',
      model: 'meta-llama/Llama-3.1-8B',
      kvRank: 0x02000100,
      worldSize: 2,
      globalRank: 0,
      localWorldSize: 1,
      localRank: 0,
      chunkHash: '9f86d081884c7d65',
      salt: 'tenant-a',
    });
    expect(parseLmcacheKey('m@00000000@ab')).toMatchObject({ shape: 'object-key', chunkHash: 'ab' });
    expect(parseLmcacheKey('m@00000000@ab')).not.toHaveProperty('salt');
  });

  test('engine keys of the in-process generations', () => {
    expect(parseLmcacheKey('vllm@meta-llama/Llama-3.1-8B@1@0@-3f2a')).toEqual({
      shape: 'engine-key',
      fmt: 'vllm',
      model: 'meta-llama/Llama-3.1-8B',
      worldSize: 1,
      workerId: 0,
      chunkHash: '-3f2a',
      tags: {},
    });
    expect(parseLmcacheKey('vllm@m@4@3@deadbeef@bfloat16@7@user%alice')).toEqual({
      shape: 'engine-key',
      fmt: 'vllm',
      model: 'm',
      worldSize: 4,
      workerId: 3,
      chunkHash: 'deadbeef',
      dtype: 'bfloat16',
      layerId: 7,
      tags: { user: 'alice' },
    });
  });

  test("the redis connector's two-key suffixes", () => {
    expect(parseLmcacheKey('vllm@m@1@0@abc123kv_bytes')).toMatchObject({ shape: 'engine-key', chunkHash: 'abc123', role: 'kv_bytes' });
    expect(parseLmcacheKey('m@00000001@abcdmetadata')).toMatchObject({ shape: 'object-key', chunkHash: 'abcd', role: 'metadata' });
  });

  test('rejects other shapes', () => {
    for (const bad of ['', 'plain-key', 'a@b', 'm@123@ab', 'vllm@m@x@0@ab', 'm@00000000@zz', 'a@@b@c@d', 'vllm@m@1@0@ab@bf16@notatag']) {
      expect(() => parseLmcacheKey(bad)).toThrow(expect.objectContaining({ code: 'TW_LMCACHE_KEY_INVALID' }));
    }
  });
});
