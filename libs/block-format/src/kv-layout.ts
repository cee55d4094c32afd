import { blockFormatErrors } from './errors.js';
import { MODEL_ID_MAX_BYTES } from './limits.js';

/**
 * Element types, numbered as LMCache numbers them in its 28-byte RemoteMetadata and `lm://`
 * headers (lmcache/v1/protocol.py), so its metadata maps 1:1 onto ours.
 */
export const DTYPE_CODES = {
  none: 0,
  half: 1,
  float16: 2,
  bfloat16: 3,
  float32: 4,
  float64: 5,
  uint8: 6,
  fp8_e4m3fn: 7,
  fp8_e5m2: 8,
} as const;
export type DtypeName = keyof typeof DTYPE_CODES;

/** Bytes per element for each dtype code (0 for `none`). */
export const DTYPE_BYTES: Readonly<Record<number, number>> = { 0: 0, 1: 2, 2: 2, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 1 };

/** LMCache's MemoryFormat enum values (lmcache/v1/memory_management.py). */
export const MEMORY_FORMAT_CODES = {
  UNDEFINED: 0,
  KV_2LTD: 1,
  KV_T2D: 2,
  KV_2TD: 3,
  BINARY: 4,
  BINARY_BUFFER: 5,
  KV_MLA_FMT: 6,
  KV_DSA_INDEX_FMT: 7,
} as const;
export type MemoryFormatName = keyof typeof MEMORY_FORMAT_CODES;

const DTYPE_MAX = 8;
const MEMORY_FORMAT_MAX = 7;

/** The optional description of what a block's bytes are. Informational: never used for identity. */
export interface KvLayout {
  /** Model identifier as the engine names it, UTF-8, at most 256 bytes. */
  readonly modelId: string;
  /** LMCache dtype code (DTYPE_CODES). */
  readonly dtypeCode: number;
  /** LMCache memory format code (MEMORY_FORMAT_CODES). */
  readonly memoryFormatCode: number;
  readonly layers: number;
  readonly tokens: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

const U32_MAX = 0xffff_ffff;

/** Throws TW_HEADER_INVALID naming the first bad field. */
export function validateKvLayout(layout: KvLayout): void {
  const bad = (field: string, why: string): never => {
    throw blockFormatErrors.create('TW_HEADER_INVALID', `KV layout field ${field} ${why}`, { details: { field } });
  };
  if (typeof layout.modelId !== 'string') bad('modelId', 'must be a string');
  if (Buffer.byteLength(layout.modelId, 'utf8') > MODEL_ID_MAX_BYTES) bad('modelId', `is longer than ${MODEL_ID_MAX_BYTES} bytes`);
  if (!Number.isInteger(layout.dtypeCode) || layout.dtypeCode < 0 || layout.dtypeCode > DTYPE_MAX) bad('dtypeCode', `must be an LMCache dtype code 0..${DTYPE_MAX}`);
  if (!Number.isInteger(layout.memoryFormatCode) || layout.memoryFormatCode < 0 || layout.memoryFormatCode > MEMORY_FORMAT_MAX) {
    bad('memoryFormatCode', `must be an LMCache memory format code 0..${MEMORY_FORMAT_MAX}`);
  }
  for (const field of ['layers', 'tokens', 'kvHeads', 'headDim'] as const) {
    const v = layout[field];
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) bad(field, 'must be an integer in 0..2^32-1');
  }
}

/**
 * Bytes a KV_2LTD-style layout implies: 2 (K and V) x layers x tokens x kvHeads x headDim x
 * element size. Null when the format or dtype does not determine a size (BINARY, `none`).
 */
export function kvLayoutBytes(layout: KvLayout): number | null {
  const elem = DTYPE_BYTES[layout.dtypeCode] ?? 0;
  if (elem === 0) return null;
  const kv = layout.memoryFormatCode === MEMORY_FORMAT_CODES.KV_MLA_FMT ? 1 : 2;
  switch (layout.memoryFormatCode) {
    case MEMORY_FORMAT_CODES.KV_2LTD:
    case MEMORY_FORMAT_CODES.KV_T2D:
    case MEMORY_FORMAT_CODES.KV_2TD:
    case MEMORY_FORMAT_CODES.KV_MLA_FMT:
      return kv * layout.layers * layout.tokens * layout.kvHeads * layout.headDim * elem;
    default:
      return null;
  }
}
