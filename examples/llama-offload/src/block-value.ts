import { Checksum64Stream, checksum64 } from '@tw/block-format';
import { llamaOffloadErrors } from './errors.js';
import { payloadBytes, type StateLayout } from './state-file.js';

const MAGIC = 0x564b_5754; // the bytes "TWKV"
const VERSION = 2;
const HEADER_BYTES_MAX = 64 * 1024;

/**
 * What travels with each block's KV bytes, so a reader can refuse a block that is not the one it
 * asked for: the model fingerprint, the block's place in the prompt, the layout of its bytes and
 * their checksum.
 */
export interface BlockHeader {
  readonly fingerprint: string;
  readonly blockIndex: number;
  readonly firstToken: number;
  readonly cells: number;
  readonly layout: StateLayout;
  readonly payloadBytes: number;
}

/**
 * `[magic u32 | version u32 | header length u32 | header JSON | xxh64(JSON) u64 | xxh64(payload) u64 | payload]`
 * as parts (the payload is not copied). Two checksums (xxh64, seed 0), so the payload's can be
 * checked against a checksum of the payload alone: the one the gateway returns when it delivers
 * a block straight into the state file (DELIVER), where this process never sees the bytes.
 */
export function encodeBlock(h: Omit<BlockHeader, 'payloadBytes'>, payload: readonly Buffer[]): { parts: Buffer[]; bytes: number; header: BlockHeader } {
  const bytes = payload.reduce((a, p) => a + p.length, 0);
  const header: BlockHeader = { ...h, payloadBytes: bytes };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.writeUInt32LE(MAGIC, 0);
  pre.writeUInt32LE(VERSION, 4);
  pre.writeUInt32LE(json.length, 8);
  const sums = Buffer.alloc(16);
  sums.writeBigUInt64LE(checksum64(json), 0);
  const stream = new Checksum64Stream();
  for (const p of payload) stream.update(p);
  sums.writeBigUInt64LE(stream.digest(), 8);
  return { parts: [pre, json, sums, ...payload], bytes: HEAD_FIXED_BYTES + json.length + bytes, header };
}

/** Bytes of a block's framing besides its header JSON: magic, version, length, two checksums. */
const HEAD_FIXED_BYTES = 12 + 16;

export interface BlockExpectation {
  readonly fingerprint: string;
  readonly blockIndex: number;
  readonly firstToken: number;
  /** The prompt's tokens of this block: the block must hold exactly these. */
  readonly tokens: ArrayLike<number>;
}

/**
 * Checks a block's head (framing and header JSON, everything before the payload) against what
 * the reader asked for: fingerprint, place, length, layout. Returns the header and the payload's
 * checksum as stored, for the caller to compare with the payload it got (or was told of).
 * Anything off throws TW_LLAMA_BLOCK_CORRUPT.
 */
export function decodeBlockHead(head: Buffer, want: Omit<BlockExpectation, 'tokens'> & { readonly cells: number }, valueBytes = head.length): { header: BlockHeader; payloadChecksum: bigint; headBytes: number } {
  const bad = (why: string): never => {
    throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${want.blockIndex}: ${why}`);
  };
  if (head.length < 12) bad('shorter than its framing');
  if (head.readUInt32LE(0) !== MAGIC || head.readUInt32LE(4) !== VERSION) bad('bad magic or version');
  const hl = head.readUInt32LE(8);
  if (hl > HEADER_BYTES_MAX || HEAD_FIXED_BYTES + hl > head.length) bad('bad header length (partial fetch?)');
  const json = head.subarray(12, 12 + hl);
  if (checksum64(json) !== head.readBigUInt64LE(12 + hl)) bad('header checksum mismatch');
  let header: BlockHeader;
  try {
    header = JSON.parse(json.toString('utf8')) as BlockHeader;
  } catch {
    return bad('header is not JSON');
  }
  if (header.fingerprint !== want.fingerprint) bad(`model fingerprint ${String(header.fingerprint)} is not ${want.fingerprint}`);
  if (header.blockIndex !== want.blockIndex || header.firstToken !== want.firstToken || header.cells !== want.cells) bad('block is for another place in the prompt');
  const headBytes = HEAD_FIXED_BYTES + hl;
  if (valueBytes - headBytes !== header.payloadBytes) bad(`payload is ${valueBytes - headBytes} bytes, header says ${header.payloadBytes} (partial fetch?)`);
  if (typeof header.layout !== 'object' || header.layout === null || !Array.isArray(header.layout.layers)) bad('no layout');
  if (payloadBytes(header.layout, header.cells) !== header.payloadBytes) bad('payload length does not match its layout');
  return { header, payloadChecksum: head.readBigUInt64LE(12 + hl + 8), headBytes };
}

/**
 * Checks a fetched block end to end: framing, fingerprint, place, length, both checksums, and
 * that its tokens are the prompt's. Anything off throws TW_LLAMA_BLOCK_CORRUPT: the caller never
 * loads it.
 */
export function decodeBlock(value: Buffer, want: BlockExpectation): { header: BlockHeader; payload: Buffer } {
  const { header, payloadChecksum, headBytes } = decodeBlockHead(value, { ...want, cells: want.tokens.length }, value.length);
  const payload = value.subarray(headBytes);
  if (checksum64(payload) !== payloadChecksum) throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${want.blockIndex}: checksum mismatch`);
  checkBlockTokens(payload, want);
  return { header, payload };
}

/** The payload starts with the block's tokens (i32 each): they must be the prompt's. */
export function checkBlockTokens(tokensBytes: Buffer, want: Pick<BlockExpectation, 'blockIndex' | 'tokens'>): void {
  for (let i = 0; i < want.tokens.length; i++) {
    if (tokensBytes.readInt32LE(i * 4) !== want.tokens[i]) throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${want.blockIndex}: token ${i} is not the prompt's`);
  }
}
