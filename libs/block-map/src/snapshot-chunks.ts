/**
 * Snapshot chunk format:
 *
 *   u8 0x53 ('S') | u8 format (1) | u32 seq | u64 appliedIndex | u8 last | u32 entries
 *   | entries x (u32 keyLen | key | u32 valueLen | value) | u64 xxh64 of everything before
 *
 * Chunks are numbered from 0; the last one has `last` = 1 (it may hold no entry). Every chunk
 * carries the applied index of the state it belongs to.
 */
import { checksum64 } from '@tw/block-format';
import { DecodeError, Reader, Writer } from './bytes.js';
import { blockMapErrors } from './errors.js';
import type { KvEntry } from './kv-store.js';

const MAGIC = 0x53;
const FORMAT = 1;

/** The chunks of one snapshot, and the applied index of the state they capture. */
export interface SnapshotStream extends AsyncIterable<Uint8Array> {
  readonly appliedIndex: number;
}

export interface SnapshotChunk {
  readonly seq: number;
  readonly appliedIndex: number;
  readonly last: boolean;
  readonly entries: readonly KvEntry[];
}

export function encodeChunk(seq: number, appliedIndex: number, last: boolean, entries: readonly KvEntry[]): Uint8Array {
  let size = 32;
  for (const [k, v] of entries) size += 8 + k.byteLength + v.byteLength;
  const w = new Writer(size).u8(MAGIC).u8(FORMAT).u32(seq).u64(appliedIndex).bool(last).u32(entries.length);
  for (const [k, v] of entries) w.bytes32(k).bytes32(v);
  const body = w.finish();
  w.big64(checksum64(body));
  return w.finish();
}

/** Decodes and verifies a chunk; throws TW_BLOCKMAP_BAD_SNAPSHOT. */
export function decodeChunk(bytes: Uint8Array): SnapshotChunk {
  try {
    if (bytes.byteLength < 8) throw new DecodeError('chunk too short');
    const body = bytes.subarray(0, bytes.byteLength - 8);
    const sum = new Reader(bytes.subarray(bytes.byteLength - 8)).big64();
    if (checksum64(body) !== sum) throw new DecodeError('chunk checksum mismatch');
    const r = new Reader(body);
    if (r.u8() !== MAGIC) throw new DecodeError('not a block map snapshot chunk');
    const format = r.u8();
    if (format !== FORMAT) throw new DecodeError(`chunk format ${format}`);
    const seq = r.u32();
    const appliedIndex = r.u64();
    const last = r.bool();
    const n = r.u32();
    if (n > r.remaining / 8) throw new DecodeError('entry count exceeds the chunk');
    const entries: KvEntry[] = [];
    for (let i = 0; i < n; i++) entries.push([r.bytes32().slice(), r.bytes32().slice()]);
    r.end();
    return { seq, appliedIndex, last, entries };
  } catch (err) {
    if (err instanceof DecodeError) throw blockMapErrors.create('TW_BLOCKMAP_BAD_SNAPSHOT', `snapshot chunk: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The applied index a snapshot's chunk belongs to (e.g. to name the Raft snapshot before restoring). */
export function snapshotChunkIndex(chunk: Uint8Array): number {
  return decodeChunk(chunk).appliedIndex;
}
