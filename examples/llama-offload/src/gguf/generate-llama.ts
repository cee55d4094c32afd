import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { llamaOffloadErrors } from '../errors.js';
import { f32ToF16Bits } from './f16.js';
import { GgmlType, type GgmlTypeCode, type GgufTensorSpec, type GgufValue, writeGguf } from './gguf-writer.js';
import { BYTE_TOKENS, headDim, type LlamaDims, REQUIRED_LLAMA_KEYS, SPECIAL_TOKENS, validateLlamaDims } from './llama-spec.js';
import { SeededRandom } from './random.js';

// llama.cpp token types (llama_token_type).
const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

export const BOS_TOKEN = 1;
export const EOS_TOKEN = 2;
/** First token id that is neither special nor a byte: prompts are drawn from [FIRST_NORMAL_TOKEN, vocab). */
export const FIRST_NORMAL_TOKEN = SPECIAL_TOKENS + BYTE_TOKENS;

/**
 * The metadata llama.cpp needs for LLM_ARCH_LLAMA plus a byte-level SPM ("llama") vocab: <unk>,
 * <s>, </s>, the 256 byte tokens <0xXX> (so any text tokenizes, byte by byte), and filler
 * tokens up to vocabSize with unique pieces.
 */
export function llamaMetadata(d: LlamaDims, seed: number): Map<string, GgufValue> {
  validateLlamaDims(d);
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < BYTE_TOKENS; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_BYTE);
    scores.push(0);
  }
  for (let i = tokens.length; i < d.vocabSize; i++) {
    tokens.push(`\u2581t${i.toString(36)}`);
    types.push(TOKEN_NORMAL);
    scores.push(-i);
  }
  const m = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: `tw-random-llama-${d.layers}L-${d.hiddenSize}d-seed${seed}` }],
    ['general.alignment', { type: 'u32', value: 32 }],
    ['general.file_type', { type: 'u32', value: d.weightType === 'f16' ? 1 : 0 }],
    ['llama.context_length', { type: 'u32', value: d.contextLength }],
    ['llama.embedding_length', { type: 'u32', value: d.hiddenSize }],
    ['llama.block_count', { type: 'u32', value: d.layers }],
    ['llama.feed_forward_length', { type: 'u32', value: d.ffnSize }],
    ['llama.attention.head_count', { type: 'u32', value: d.heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: d.kvHeads }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.rope.dimension_count', { type: 'u32', value: headDim(d) }],
    ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
    ['llama.vocab_size', { type: 'u32', value: d.vocabSize }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: scores }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: types }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: BOS_TOKEN }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: EOS_TOKEN }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ]);
  return m;
}

/** Checks the metadata against what llama.cpp aborts on, before a byte is written. */
export function validateLlamaMetadata(m: ReadonlyMap<string, GgufValue>, d: LlamaDims): void {
  const bad = (why: string): never => {
    throw llamaOffloadErrors.create('TW_LLAMA_MODEL_SPEC', `bad GGUF metadata: ${why}`);
  };
  for (const k of REQUIRED_LLAMA_KEYS) if (!m.has(k)) bad(`${k} is missing (llama.cpp would abort or refuse the file)`);
  const u32 = (k: string): number => {
    const v = m.get(k);
    return v?.type === 'u32' ? v.value : bad(`${k} must be a u32`);
  };
  if (u32('llama.attention.head_count') % u32('llama.attention.head_count_kv') !== 0) bad('head_count is not a multiple of head_count_kv');
  if (u32('llama.embedding_length') !== d.hiddenSize || u32('llama.block_count') !== d.layers) bad('dimensions disagree with the tensors');
  const n = (k: string): number => {
    const v = m.get(k);
    return v !== undefined && (v.type === 'string[]' || v.type === 'f32[]' || v.type === 'i32[]') ? v.value.length : bad(`${k} must be an array`);
  };
  if (n('tokenizer.ggml.tokens') !== d.vocabSize || n('tokenizer.ggml.scores') !== d.vocabSize || n('tokenizer.ggml.token_type') !== d.vocabSize) bad('the vocab arrays must all have vocabSize entries');
}

/** A table of 65,536 f16 values uniform in (-scale, scale): two table lookups per random u32. */
function f16Table(scale: number): Uint16Array {
  const t = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f32ToF16Bits(((i + 0.5) / 65536 * 2 - 1) * scale);
  return t;
}

/** A weight tensor: uniform in +-sqrt(3 / fanIn), so activations keep unit variance. */
function randomTensor(name: string, dims: readonly number[], type: GgmlTypeCode, seed: number, stream: number): GgufTensorSpec {
  const fanIn = dims[0]!;
  const scale = Math.sqrt(3 / fanIn);
  let table: Uint16Array | undefined;
  let rng = new SeededRandom(seed, stream);
  let nextElement = 0;
  return {
    name,
    dims,
    type,
    fill(out, firstElement) {
      // Chunks arrive in order; a restart (a second write of the same spec) reseeds.
      if (firstElement !== nextElement) {
        if (firstElement !== 0) throw new Error(`chunks out of order for ${name}`);
        rng = new SeededRandom(seed, stream);
      }
      if (type === GgmlType.F16) {
        table ??= f16Table(scale);
        const u16 = new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2);
        const n = u16.length;
        let i = 0;
        for (; i + 1 < n; i += 2) {
          const r = rng.nextU32();
          u16[i] = table[r & 0xffff]!;
          u16[i + 1] = table[r >>> 16]!;
        }
        if (i < n) u16[i] = table[rng.nextU32() & 0xffff]!;
        nextElement = firstElement + n;
      } else {
        const f32 = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
        for (let i = 0; i < f32.length; i++) f32[i] = (rng.nextU32() / 0x1_0000_0000 * 2 - 1) * scale;
        nextElement = firstElement + f32.length;
      }
    },
  };
}

function onesTensor(name: string, n: number): GgufTensorSpec {
  return {
    name,
    dims: [n],
    type: GgmlType.F32,
    fill(out) {
      new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4).fill(1);
    },
  };
}

/** The tensors of a Llama model in ggml dims (the reverse of the numpy shapes [out, in]). */
export function llamaTensors(d: LlamaDims, seed: number): GgufTensorSpec[] {
  const w = d.weightType === 'f16' ? GgmlType.F16 : GgmlType.F32;
  const e = d.hiddenSize;
  const kv = d.kvHeads * headDim(d);
  let stream = 0;
  const t: GgufTensorSpec[] = [randomTensor('token_embd.weight', [e, d.vocabSize], w, seed, stream++)];
  for (let l = 0; l < d.layers; l++) {
    const p = `blk.${l}.`;
    t.push(onesTensor(`${p}attn_norm.weight`, e));
    t.push(randomTensor(`${p}attn_q.weight`, [e, e], w, seed, stream++));
    t.push(randomTensor(`${p}attn_k.weight`, [e, kv], w, seed, stream++));
    t.push(randomTensor(`${p}attn_v.weight`, [e, kv], w, seed, stream++));
    t.push(randomTensor(`${p}attn_output.weight`, [e, e], w, seed, stream++));
    t.push(onesTensor(`${p}ffn_norm.weight`, e));
    t.push(randomTensor(`${p}ffn_gate.weight`, [e, d.ffnSize], w, seed, stream++));
    t.push(randomTensor(`${p}ffn_up.weight`, [e, d.ffnSize], w, seed, stream++));
    t.push(randomTensor(`${p}ffn_down.weight`, [d.ffnSize, e], w, seed, stream++));
  }
  t.push(onesTensor('output_norm.weight', e));
  t.push(randomTensor('output.weight', [e, d.vocabSize], w, seed, stream++));
  return t;
}

export interface GeneratedModel {
  readonly path: string;
  readonly sizeBytes: number;
  readonly dims: LlamaDims;
  readonly seed: number;
}

/** Writes a random-weight Llama GGUF to `path`; same dims + seed give the same bytes. */
export function generateLlamaGguf(path: string, dims: LlamaDims, seed: number): GeneratedModel {
  const metadata = llamaMetadata(dims, seed);
  validateLlamaMetadata(metadata, dims);
  const { sizeBytes } = writeGguf(path, metadata, llamaTensors(dims, seed));
  return { path, sizeBytes, dims, seed };
}

/**
 * Generates the model once: a `.spec.json` beside it records the dims and seed it was made
 * from, and a later call with the same ones reuses the file.
 */
export function ensureLlamaGguf(path: string, dims: LlamaDims, seed: number): GeneratedModel & { reused: boolean } {
  const specPath = `${path}.spec.json`;
  const want = JSON.stringify({ dims, seed, generator: 1 });
  if (existsSync(path) && existsSync(specPath) && readFileSync(specPath, 'utf8') === want) {
    return { path, sizeBytes: statSync(path).size, dims, seed, reused: true };
  }
  const g = generateLlamaGguf(path, dims, seed);
  writeFileSync(specPath, want);
  return { ...g, reused: false };
}
