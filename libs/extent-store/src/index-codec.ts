/**
 * LevelDB layout of the index. Keys are byte strings with a one-byte kind prefix:
 * - `f` + fragment id -> IndexEntry (48 bytes)
 * - `x` + extent number (u32 BE) -> ExtentMeta: how far the index has absorbed that extent
 * - `m` + name -> store metadata (format, highest applied sequence number, clean shutdown flag)
 * - `t` + fragment id -> tombstone sequence (only while rebuilding)
 */
export const KEY_FRAGMENT = 0x66; // 'f'
export const KEY_EXTENT = 0x78; // 'x'
export const KEY_META = 0x6d; // 'm'
export const KEY_REBUILD_TOMBSTONE = 0x74; // 't'

export interface IndexEntry {
  extentNo: number;
  /** Record start in the extent. */
  offset: number;
  payloadBytes: number;
  /** Bytes the whole record occupies (padding included). */
  recordBytes: number;
  seq: number;
  /** Trailing checksum of the record. */
  checksum: bigint;
}

export function fragmentKey(id: Uint8Array): Buffer {
  const k = Buffer.allocUnsafe(id.byteLength + 1);
  k[0] = KEY_FRAGMENT;
  k.set(id, 1);
  return k;
}

export function prefixedKey(kind: number, id: Uint8Array): Buffer {
  const k = Buffer.allocUnsafe(id.byteLength + 1);
  k[0] = kind;
  k.set(id, 1);
  return k;
}

export function encodeEntry(e: IndexEntry): Buffer {
  const b = Buffer.allocUnsafe(48);
  b.writeUInt32LE(e.extentNo, 0);
  b.writeUInt32LE(0, 4);
  b.writeBigUInt64LE(BigInt(e.offset), 8);
  b.writeBigUInt64LE(BigInt(e.payloadBytes), 16);
  b.writeBigUInt64LE(BigInt(e.recordBytes), 24);
  b.writeBigUInt64LE(BigInt(e.seq), 32);
  b.writeBigUInt64LE(e.checksum, 40);
  return b;
}

export function decodeEntry(b: Uint8Array): IndexEntry {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    extentNo: buf.readUInt32LE(0),
    offset: Number(buf.readBigUInt64LE(8)),
    payloadBytes: Number(buf.readBigUInt64LE(16)),
    recordBytes: Number(buf.readBigUInt64LE(24)),
    seq: Number(buf.readBigUInt64LE(32)),
    checksum: buf.readBigUInt64LE(40),
  };
}

export interface ExtentMeta {
  /** End of the last record the index has absorbed (a scan on open starts here). */
  tailBytes: number;
  /** Smallest sequence number of any record in the extent (Infinity when empty). */
  minSeq: number;
  /**
   * High-water mark: no record reaches past it (persisted, synced, before any write beyond it),
   * so a scan after a crash stops there instead of reading the rest of a preallocated extent.
   * Undefined: unknown, scan to the end.
   */
  hwmBytes?: number;
}

export function extentKey(extentNo: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = KEY_EXTENT;
  k.writeUInt32BE(extentNo, 1);
  return k;
}

export function encodeExtentMeta(m: ExtentMeta): Buffer {
  const b = Buffer.allocUnsafe(m.hwmBytes === undefined ? 16 : 24);
  b.writeBigUInt64LE(BigInt(m.tailBytes), 0);
  b.writeBigUInt64LE(m.minSeq === Infinity ? 0xffff_ffff_ffff_ffffn : BigInt(m.minSeq), 8);
  if (m.hwmBytes !== undefined) b.writeBigUInt64LE(BigInt(m.hwmBytes), 16);
  return b;
}

export function decodeExtentMeta(b: Uint8Array): ExtentMeta {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const min = buf.readBigUInt64LE(8);
  const meta: ExtentMeta = { tailBytes: Number(buf.readBigUInt64LE(0)), minSeq: min === 0xffff_ffff_ffff_ffffn ? Infinity : Number(min) };
  if (buf.byteLength >= 24) meta.hwmBytes = Number(buf.readBigUInt64LE(16));
  return meta;
}

export function metaKey(name: 'format' | 'applied-seq' | 'clean'): Buffer {
  return Buffer.concat([Buffer.from([KEY_META]), Buffer.from(name)]);
}

export function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}

export function decodeU64(b: Uint8Array): number {
  return Number(Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64LE(0));
}

/** Smallest key greater than every key starting with `prefix` (undefined: none). */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}
