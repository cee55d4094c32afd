import { ByteReader, ByteWriter } from './byte-reader.js';
import { checksum64 } from './checksum.js';
import { blockFormatErrors } from './errors.js';
import { type KvLayout, validateKvLayout } from './kv-layout.js';
import { MODEL_ID_MAX_BYTES, PAYLOAD_MAX_BYTES } from './limits.js';

/**
 * The header in front of a block's payload.
 *
 * ```
 * off  size  field
 *   0     4  magic "TWBK"
 *   4     2  format version (1)
 *   6     2  flags: bit 0 = KV layout present; other bits must be 0
 *   8     4  header length in bytes, this field's header included (multiple of 8)
 *  12     4  reserved, 0
 *  16     8  payload length in bytes
 *  24     8  payload checksum (xxh64)
 *  32     -  KV layout, if flag 0: dtype u8, memory format u8, model id length u16,
 *            layers u32, tokens u32, kv heads u32, head dim u32, model id (UTF-8), zero padding to 8
 * len-8   8  header checksum: xxh64 of every header byte before it
 * ```
 * All integers little-endian.
 */
export interface BlockHeader {
  readonly payloadLength: number;
  readonly payloadChecksum: bigint;
  readonly layout?: KvLayout | undefined;
}

export const BLOCK_MAGIC = Buffer.from('TWBK', 'latin1');
export const BLOCK_FORMAT_VERSION = 1;
const FLAG_LAYOUT = 1;
const FIXED_BYTES = 32;
const LAYOUT_FIXED_BYTES = 20;
const CHECKSUM_BYTES = 8;
/** Largest possible block header. */
export const BLOCK_HEADER_MAX_BYTES = FIXED_BYTES + LAYOUT_FIXED_BYTES + MODEL_ID_MAX_BYTES + 8 + CHECKSUM_BYTES;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const pad8 = (n: number): number => Math.ceil(n / 8) * 8;

/** Bytes `encodeBlockHeader(h)` will produce. */
export function blockHeaderBytes(h: BlockHeader): number {
  if (h.layout === undefined) return FIXED_BYTES + CHECKSUM_BYTES;
  return pad8(FIXED_BYTES + LAYOUT_FIXED_BYTES + Buffer.byteLength(h.layout.modelId, 'utf8')) + CHECKSUM_BYTES;
}

export function encodeBlockHeader(h: BlockHeader): Buffer {
  if (!Number.isInteger(h.payloadLength) || h.payloadLength < 0 || h.payloadLength > PAYLOAD_MAX_BYTES) {
    throw blockFormatErrors.create('TW_HEADER_INVALID', `payload length ${h.payloadLength} is out of range`, { details: { field: 'payloadLength' } });
  }
  if (h.layout !== undefined) validateKvLayout(h.layout);
  const length = blockHeaderBytes(h);
  const out = Buffer.alloc(length);
  const w = new ByteWriter(out);
  w.raw(BLOCK_MAGIC);
  w.u16(BLOCK_FORMAT_VERSION);
  w.u16(h.layout === undefined ? 0 : FLAG_LAYOUT);
  w.u32(length);
  w.u32(0);
  w.u64(h.payloadLength);
  w.u64(h.payloadChecksum);
  if (h.layout !== undefined) {
    const model = Buffer.from(h.layout.modelId, 'utf8');
    w.u8(h.layout.dtypeCode);
    w.u8(h.layout.memoryFormatCode);
    w.u16(model.length);
    w.u32(h.layout.layers);
    w.u32(h.layout.tokens);
    w.u32(h.layout.kvHeads);
    w.u32(h.layout.headDim);
    w.raw(model);
  }
  out.writeBigUInt64LE(checksum64(out.subarray(0, length - CHECKSUM_BYTES)), length - CHECKSUM_BYTES);
  return out;
}

/**
 * Decodes a block header from the start of `bytes` (which may continue with the payload).
 * Untrusted input: every malformation is a coded TwError.
 */
export function decodeBlockHeader(bytes: Uint8Array): { header: BlockHeader; headerLength: number } {
  const r = new ByteReader(bytes, 'block header');
  const magic = r.bytes(4);
  if (!BLOCK_MAGIC.equals(magic)) throw blockFormatErrors.create('TW_HEADER_BAD_MAGIC', 'not a block header (bad magic)');
  const version = r.u16();
  if (version !== BLOCK_FORMAT_VERSION) {
    throw blockFormatErrors.create('TW_HEADER_BAD_VERSION', `block header version ${version}; this build reads ${BLOCK_FORMAT_VERSION}`, {
      details: { version },
    });
  }
  const flags = r.u16();
  if ((flags & ~FLAG_LAYOUT) !== 0) invalid('flags', `unknown flags 0x${flags.toString(16)}`);
  const headerLength = r.u32();
  if (headerLength % 8 !== 0 || headerLength < FIXED_BYTES + CHECKSUM_BYTES || headerLength > BLOCK_HEADER_MAX_BYTES) {
    invalid('headerLength', `header length ${headerLength} is impossible`);
  }
  if (bytes.byteLength < headerLength) {
    throw blockFormatErrors.create('TW_HEADER_TRUNCATED', `block header truncated: ${bytes.byteLength} of ${headerLength} bytes`, {
      details: { needed: headerLength, available: bytes.byteLength },
    });
  }
  const stored = new DataView(bytes.buffer, bytes.byteOffset + headerLength - CHECKSUM_BYTES, CHECKSUM_BYTES).getBigUint64(0, true);
  if (stored !== checksum64(bytes.subarray(0, headerLength - CHECKSUM_BYTES))) {
    throw blockFormatErrors.create('TW_HEADER_CHECKSUM', 'block header checksum mismatch');
  }
  if (r.u32() !== 0) invalid('reserved', 'reserved bytes are not zero');
  const payloadLength = r.u64AsNumber('payloadLength', PAYLOAD_MAX_BYTES);
  const payloadChecksum = r.u64();
  let layout: KvLayout | undefined;
  if (flags & FLAG_LAYOUT) {
    const dtypeCode = r.u8();
    const memoryFormatCode = r.u8();
    const modelLength = r.u16();
    const layers = r.u32();
    const tokens = r.u32();
    const kvHeads = r.u32();
    const headDim = r.u32();
    if (modelLength > MODEL_ID_MAX_BYTES) invalid('modelId', `model id of ${modelLength} bytes`);
    if (pad8(FIXED_BYTES + LAYOUT_FIXED_BYTES + modelLength) + CHECKSUM_BYTES !== headerLength) {
      invalid('headerLength', 'header length disagrees with the layout it holds');
    }
    let modelId = '';
    try {
      modelId = utf8.decode(r.bytes(modelLength));
    } catch (err) {
      if (err instanceof TypeError) invalid('modelId', 'model id is not valid UTF-8');
      throw err;
    }
    const padding = r.bytes(headerLength - CHECKSUM_BYTES - r.offset);
    if (padding.some((b) => b !== 0)) invalid('padding', 'padding bytes are not zero');
    layout = { modelId, dtypeCode, memoryFormatCode, layers, tokens, kvHeads, headDim };
    validateKvLayout(layout);
  } else if (headerLength !== FIXED_BYTES + CHECKSUM_BYTES) {
    invalid('headerLength', 'header length disagrees with its flags');
  }
  return { header: layout === undefined ? { payloadLength, payloadChecksum } : { payloadLength, payloadChecksum, layout }, headerLength };
}

function invalid(field: string, why: string): never {
  throw blockFormatErrors.create('TW_HEADER_INVALID', `block header field ${field}: ${why}`, { details: { field } });
}
