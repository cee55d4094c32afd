import { llamaOffloadErrors } from '../errors.js';

/** Dimensions of a Llama-architecture model (llama.cpp's LLM_ARCH_LLAMA). */
export interface LlamaDims {
  readonly layers: number;
  readonly hiddenSize: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly ffnSize: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  /** Weights of the 2-D tensors; norms are always f32. */
  readonly weightType: 'f16' | 'f32';
}

/** Enough of a tokenizer for llama.cpp's SPM vocab: 3 specials + 256 byte tokens. */
export const SPECIAL_TOKENS = 3;
export const BYTE_TOKENS = 256;
export const VOCAB_MIN = SPECIAL_TOKENS + BYTE_TOKENS;

/** A few MB: what the tests use (KV 1 KiB per token). */
export const TINY_DIMS: LlamaDims = { layers: 4, hiddenSize: 256, heads: 8, kvHeads: 2, ffnSize: 512, vocabSize: 512, contextLength: 2048, weightType: 'f16' };

/** About 300 MB: what the demo and the benchmark use (KV 8 KiB per token, as issue 7 measured). */
export const DEMO_DIMS: LlamaDims = { layers: 8, hiddenSize: 1024, heads: 16, kvHeads: 4, ffnSize: 4096, vocabSize: 16384, contextLength: 8192 + 512, weightType: 'f16' };

export function headDim(d: LlamaDims): number {
  return d.hiddenSize / d.heads;
}

/** Bytes of K and V per token in an f16 KV cache: 2 x layers x kv heads x head dim x 2. */
export function kvBytesPerToken(d: LlamaDims): number {
  return 2 * d.layers * d.kvHeads * headDim(d) * 2;
}

/**
 * Refuses dimensions llama.cpp would abort on (it aborts the whole process, no exception, when
 * feed_forward_length or attention.head_count is missing or GQA shapes do not divide).
 */
export function validateLlamaDims(d: LlamaDims): void {
  const bad = (why: string): never => {
    throw llamaOffloadErrors.create('TW_LLAMA_MODEL_SPEC', `bad model dimensions: ${why}`);
  };
  const positive = ['layers', 'hiddenSize', 'heads', 'kvHeads', 'ffnSize', 'vocabSize', 'contextLength'] as const;
  for (const k of positive) {
    const v = d[k];
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) bad(`${k} must be a positive integer (got ${v})`);
  }
  if (d.hiddenSize % d.heads !== 0) bad(`hiddenSize ${d.hiddenSize} is not a multiple of heads ${d.heads}`);
  if (d.heads % d.kvHeads !== 0) bad(`heads ${d.heads} is not a multiple of kvHeads ${d.kvHeads} (GQA)`);
  if (headDim(d) % 2 !== 0) bad(`head dim ${headDim(d)} must be even (RoPE)`);
  if (d.vocabSize < VOCAB_MIN) bad(`vocabSize must be at least ${VOCAB_MIN} (3 specials + 256 byte tokens)`);
  if (d.weightType !== 'f16' && d.weightType !== 'f32') bad(`weightType must be f16 or f32`);
}

/** The llama.cpp metadata keys this generator always writes: checked again just before writing. */
export const REQUIRED_LLAMA_KEYS = [
  'general.architecture',
  'llama.context_length',
  'llama.embedding_length',
  'llama.block_count',
  'llama.feed_forward_length',
  'llama.attention.head_count',
  'llama.attention.head_count_kv',
  'llama.attention.layer_norm_rms_epsilon',
  'llama.rope.dimension_count',
  'tokenizer.ggml.model',
  'tokenizer.ggml.tokens',
  'tokenizer.ggml.scores',
  'tokenizer.ggml.token_type',
] as const;
