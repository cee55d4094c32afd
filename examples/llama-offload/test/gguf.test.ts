import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterEach, describe, expect, it } from 'vitest';
import { f32ToF16Bits } from '../src/gguf/f16.js';
import { generateLlamaGguf, llamaMetadata, validateLlamaMetadata } from '../src/gguf/generate-llama.js';
import { type LlamaDims, TINY_DIMS, validateLlamaDims } from '../src/gguf/llama-spec.js';

const SMALL: LlamaDims = { layers: 2, hiddenSize: 64, heads: 4, kvHeads: 2, ffnSize: 96, vocabSize: 300, contextLength: 256, weightType: 'f16' };

describe('GGUF generator', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

  it('is deterministic: the same seed and dims give the same bytes, another seed other bytes', () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-gguf-'));
    const a = generateLlamaGguf(join(dir, 'a.gguf'), TINY_DIMS, 7);
    const b = generateLlamaGguf(join(dir, 'b.gguf'), TINY_DIMS, 7);
    const c = generateLlamaGguf(join(dir, 'c.gguf'), TINY_DIMS, 8);
    expect(a.sizeBytes).toBe(b.sizeBytes);
    expect(sha(a.path)).toBe(sha(b.path));
    expect(sha(c.path)).not.toBe(sha(a.path));
    // Pinned: a change of these bytes changes every fingerprint, so it must be deliberate.
    expect(sha(a.path)).toBe(PINNED_TINY_SEED7_SHA256);
  });

  it('writes the metadata and the tensor dims (ggml order, the reverse of numpy shapes) llama.cpp reads', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-gguf-'));
    const g = generateLlamaGguf(join(dir, 's.gguf'), SMALL, 1);
    const info = await readGgufFileInfo(g.path, { sourceType: 'filesystem', logWarnings: false });
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md['general']!['architecture']).toBe('llama');
    const llama = md['llama'] as Record<string, unknown>;
    expect(llama['block_count']).toBe(2);
    expect(llama['embedding_length']).toBe(64);
    expect(llama['feed_forward_length']).toBe(96);
    expect((llama['attention'] as Record<string, unknown>)['head_count']).toBe(4);
    expect((llama['attention'] as Record<string, unknown>)['head_count_kv']).toBe(2);
    const tensors = new Map(info.fullTensorInfo!.map((t) => [t.name, t.dimensions.map(Number)]));
    expect(tensors.get('token_embd.weight')).toEqual([64, 300]);
    expect(tensors.get('blk.0.attn_k.weight')).toEqual([64, 32]);
    expect(tensors.get('blk.1.ffn_down.weight')).toEqual([96, 64]);
    expect(tensors.get('blk.1.ffn_up.weight')).toEqual([64, 96]);
    expect(tensors.size).toBe(3 + 2 * 9);
  });

  it('refuses dimensions and metadata that would make llama.cpp abort', () => {
    expect(() => validateLlamaDims({ ...SMALL, kvHeads: 3 })).toThrow(/multiple of kvHeads/);
    expect(() => validateLlamaDims({ ...SMALL, hiddenSize: 66 })).toThrow(/multiple of heads/);
    expect(() => validateLlamaDims({ ...SMALL, vocabSize: 100 })).toThrow(/at least 259/);
    expect(() => validateLlamaDims({ ...SMALL, layers: 0 })).toThrow(/layers/);
    for (const key of ['llama.feed_forward_length', 'llama.attention.head_count', 'llama.attention.head_count_kv']) {
      const m = llamaMetadata(SMALL, 1);
      m.delete(key);
      expect(() => validateLlamaMetadata(m, SMALL)).toThrow(new RegExp(`${key.replace(/\./g, '\\.')} is missing`));
    }
    const m = llamaMetadata(SMALL, 1);
    m.set('tokenizer.ggml.scores', { type: 'f32[]', value: [0] });
    expect(() => validateLlamaMetadata(m, SMALL)).toThrow(/vocab arrays/);
  });

  it('converts to f16 with round-to-nearest-even', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie: even mantissa
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});

const PINNED_TINY_SEED7_SHA256 = 'c96de725acd76e50cbf774469a0249fa8a1ea17b41dbb28f2103b8b30f9f4fa6';
