import { checksum64Parts } from '@tw/block-format';
import { llamaOffloadErrors } from './errors.js';
import { payloadBytes, type StateLayout } from './state-file.js';

const MAGIC = 0x564b_5754; // the bytes "TWKV"
const VERSION = 1;
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
 * `[magic u32 | version u32 | header length u32 | header JSON | checksum u64 | payload]` as parts
 * (the payload is not copied). The checksum (xxh64, seed 0) covers the header JSON and the
 * payload, so a flipped bit anywhere in either is caught.
 */
export function encodeBlock(h: Omit<BlockHeader, 'payloadBytes'>, payload: readonly Buffer[]): { parts: Buffer[]; bytes: number; header: BlockHeader } {
  const bytes = payload.reduce((a, p) => a + p.length, 0);
  const header: BlockHeader = { ...h, payloadBytes: bytes };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.writeUInt32LE(MAGIC, 0);
  pre.writeUInt32LE(VERSION, 4);
  pre.writeUInt32LE(json.length, 8);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64LE(checksum64Parts([json, ...payload]));
  return { parts: [pre, json, sum, ...payload], bytes: 12 + json.length + 8 + bytes, header };
}

export interface BlockExpectation {
  readonly fingerprint: string;
  readonly blockIndex: number;
  readonly firstToken: number;
  /** The prompt's tokens of this block: the block must hold exactly these. */
  readonly tokens: ArrayLike<number>;
}

/**
 * Checks a fetched block end to end: framing, fingerprint, place, length, checksum, and that its
 * tokens are the prompt's. Anything off throws TW_LLAMA_BLOCK_CORRUPT: the caller never loads it.
 */
export function decodeBlock(value: Buffer, want: BlockExpectation): { header: BlockHeader; payload: Buffer } {
  const bad = (why: string): never => {
    throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${want.blockIndex}: ${why}`);
  };
  if (value.length < 12) bad('shorter than its framing');
  if (value.readUInt32LE(0) !== MAGIC || value.readUInt32LE(4) !== VERSION) bad('bad magic or version');
  const hl = value.readUInt32LE(8);
  if (hl > HEADER_BYTES_MAX || 12 + hl + 8 > value.length) bad('bad header length (partial fetch?)');
  const json = value.subarray(12, 12 + hl);
  const payload = value.subarray(12 + hl + 8);
  let header: BlockHeader;
  try {
    header = JSON.parse(json.toString('utf8')) as BlockHeader;
  } catch {
    return bad('header is not JSON');
  }
  if (header.fingerprint !== want.fingerprint) bad(`model fingerprint ${String(header.fingerprint)} is not ${want.fingerprint}`);
  if (header.blockIndex !== want.blockIndex || header.firstToken !== want.firstToken || header.cells !== want.tokens.length) bad('block is for another place in the prompt');
  if (payload.length !== header.payloadBytes) bad(`payload is ${payload.length} bytes, header says ${header.payloadBytes} (partial fetch?)`);
  if (typeof header.layout !== 'object' || header.layout === null || !Array.isArray(header.layout.layers)) bad('no layout');
  if (payloadBytes(header.layout, header.cells) !== payload.length) bad('payload length does not match its layout');
  if (checksum64Parts([json, payload]) !== value.readBigUInt64LE(12 + hl)) bad('checksum mismatch');
  for (let i = 0; i < want.tokens.length; i++) if (payload.readInt32LE(i * 4) !== want.tokens[i]) bad(`token ${i} is not the prompt's`);
  return { header, payload };
}
