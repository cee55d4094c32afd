/**
 * The on-disk record: self-describing, so the index can be rebuilt from the extents alone.
 *
 * ```
 * offset        size  field
 * 0             4     magic "TWX1"
 * 4             2     format version (1)
 * 6             1     type: 1 put, 2 tombstone
 * 7             1     flags (0)
 * 8             2     fragment id length (bytes)
 * 10            6     reserved (0)
 * 16            8     sequence number (monotonic per store; later wins)
 * 24            8     payload length (bytes; 0 for a tombstone)
 * 32            idLen fragment id
 * 32+idLen      8     header checksum: xxh64 of bytes [0, 32+idLen)
 * 40+idLen      len   payload (the fragment, opaque; its own header is the caller's)
 * ...           8     trailing checksum: xxh64 of header (with its checksum) + payload
 * ...                 zero padding to the next 4 KiB boundary
 * ```
 * Integers are little-endian. Records start on 4 KiB boundaries so direct I/O is possible later.
 */
import { Checksum64Stream, checksum64 } from './checksum.js';
import { ID_BYTES_MAX, RECORD_ALIGN_BYTES } from './limits.js';

export const RECORD_MAGIC = 0x31585754; // "TWX1" read as little-endian u32
export const RECORD_VERSION = 1;
export const RECORD_FIXED_BYTES = 32;
export const RECORD_TRAILER_BYTES = 8;

export const enum RecordType {
  Put = 1,
  Tombstone = 2,
}

export interface RecordHeader {
  type: RecordType;
  seq: number;
  id: Buffer;
  payloadBytes: number;
}

export function headerBytesFor(idBytes: number): number {
  return RECORD_FIXED_BYTES + idBytes + 8;
}

export function alignUp(n: number): number {
  return Math.ceil(n / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;
}

/** Bytes a record occupies in its extent, padding included. */
export function recordBytesFor(idBytes: number, payloadBytes: number): number {
  return alignUp(headerBytesFor(idBytes) + payloadBytes + RECORD_TRAILER_BYTES);
}

/** Builds the header (with its checksum) into a fresh buffer. */
export function encodeHeader(h: RecordHeader): Buffer {
  const idLen = h.id.byteLength;
  const buf = Buffer.alloc(headerBytesFor(idLen));
  buf.writeUInt32LE(RECORD_MAGIC, 0);
  buf.writeUInt16LE(RECORD_VERSION, 4);
  buf.writeUInt8(h.type, 6);
  buf.writeUInt8(0, 7);
  buf.writeUInt16LE(idLen, 8);
  buf.writeBigUInt64LE(BigInt(h.seq), 16);
  buf.writeBigUInt64LE(BigInt(h.payloadBytes), 24);
  h.id.copy(buf, RECORD_FIXED_BYTES);
  buf.writeBigUInt64LE(checksum64(buf.subarray(0, RECORD_FIXED_BYTES + idLen)), RECORD_FIXED_BYTES + idLen);
  return buf;
}

/** Trailing checksum of a record: header bytes then payload parts. */
export function recordChecksum(header: Uint8Array, payload: readonly Uint8Array[]): bigint {
  const h = new Checksum64Stream().update(header);
  for (const p of payload) h.update(p);
  return h.digest();
}

export function encodeTrailer(checksum: bigint): Buffer {
  const b = Buffer.alloc(RECORD_TRAILER_BYTES);
  b.writeBigUInt64LE(checksum, 0);
  return b;
}

export type HeaderParse =
  | { ok: true; header: RecordHeader; headerBytes: number }
  | { ok: false; reason: string };

/**
 * Parses and verifies a header from `buf` (which holds at least the bytes from the record start;
 * `available` of them are valid). `roomBytes` is how far the extent goes past the record start.
 */
export function parseHeader(buf: Buffer, available: number, roomBytes: number): HeaderParse {
  if (available < RECORD_FIXED_BYTES) return { ok: false, reason: 'short header' };
  if (buf.readUInt32LE(0) !== RECORD_MAGIC) return { ok: false, reason: 'bad magic' };
  if (buf.readUInt16LE(4) !== RECORD_VERSION) return { ok: false, reason: 'unknown version' };
  const type = buf.readUInt8(6);
  if (type !== RecordType.Put && type !== RecordType.Tombstone) return { ok: false, reason: 'unknown record type' };
  const idLen = buf.readUInt16LE(8);
  if (idLen === 0 || idLen > ID_BYTES_MAX) return { ok: false, reason: 'bad id length' };
  const headerBytes = headerBytesFor(idLen);
  if (available < headerBytes) return { ok: false, reason: 'short header' };
  const stored = buf.readBigUInt64LE(RECORD_FIXED_BYTES + idLen);
  if (checksum64(buf.subarray(0, RECORD_FIXED_BYTES + idLen)) !== stored) return { ok: false, reason: 'header checksum mismatch' };
  const seq = Number(buf.readBigUInt64LE(16));
  const payloadBytes = Number(buf.readBigUInt64LE(24));
  if (type === RecordType.Tombstone && payloadBytes !== 0) return { ok: false, reason: 'tombstone with payload' };
  if (headerBytes + payloadBytes + RECORD_TRAILER_BYTES > roomBytes) return { ok: false, reason: 'record runs past the extent' };
  return {
    ok: true,
    headerBytes,
    header: { type: type as RecordType, seq, payloadBytes, id: Buffer.from(buf.subarray(RECORD_FIXED_BYTES, RECORD_FIXED_BYTES + idLen)) },
  };
}
