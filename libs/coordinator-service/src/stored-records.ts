/**
 * A LookupPrefix answer packed straight from the block map's stored record bytes
 * (BlockMap.lookupPrefixStored) into @tw/rpc's packed-records layout, field by field, without
 * building a BlockRecord and a WireRecord per key and encoding them again. Both layouts are
 * little-endian and share the 8-byte fields, so most of a record is copied as is; node indexes
 * and redundancy bytes become string-table indexes through small per-answer tables.
 *
 * The output is byte-for-byte what `encodeWireRecords(records.map(recordToWire))` gives for the
 * decoded records (test/stored-records.test.ts checks it on random records).
 */
import { type Redundancy, formatRedundancy } from '@tw/block-format';
import { STORED_BLOCK as S, type StoredLookup, blockMapErrors } from '@tw/block-map';
import { PACKED_FORMAT } from '@tw/rpc';

const corrupt = (why: string): never => {
  // A record the block map cannot read: the replica's state is broken (the service answers UNAVAILABLE).
  throw blockMapErrors.create('TW_BLOCKMAP_CORRUPT_STATE', `stored block record: ${why}`);
};

/** The redundancy policy of the three stored bytes (kind, a, b), as block-map's readRedundancy reads them. */
function redundancyName(kind: number, a: number, b: number): string {
  let r: Redundancy;
  if (kind === 1) r = { kind: 'ec', k: a, m: b };
  else if (kind === 2 && b === 0) r = { kind: 'replicate', n: a };
  else if (kind === 0 && a === 0 && b === 0) r = { kind: 'none' };
  else return corrupt(`redundancy kind ${kind}`);
  return formatRedundancy(r);
}

class Strings {
  readonly ids = new Map<string, number>();
  readonly list: Buffer[] = [];
  bytes = 0;
  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      const b = Buffer.from(s, 'utf8');
      if (b.length > 0xffff || this.list.length >= 0xfffe) corrupt('string table overflow');
      i = this.list.length;
      this.ids.set(s, i);
      this.list.push(b);
      this.bytes += 2 + b.length;
    }
    return i;
  }
}

const LAYOUT_WIRE_BYTES = 2 + 6 * 4;

/**
 * Copies `n` bytes from `src` at `s` to `dst` at `d`. For the 8- to 24-byte fields of a record a
 * plain loop beats `dst.set(src.subarray(...))`, which allocates a view per field (four per
 * record: ~40 % of packing 1,024 records went to them and their garbage collection).
 */
function copyBytes(src: Uint8Array, s: number, dst: Uint8Array, d: number, n: number): void {
  for (let i = 0; i < n; i++) dst[d + i] = src[s + i]!;
}

/**
 * Packs the records of a lookup: `keys[i]` is the user key of stored record i of `stored`
 * (BlockMap.lookupPrefixStored), `nodeIdOf` names a stored node index.
 */
export function packStoredRecords(keys: readonly Uint8Array[], stored: StoredLookup, nodeIdOf: (index: number) => string): Buffer {
  const v = stored.bytes;
  const offsets = stored.offsets;
  const count = stored.count;
  const t = new Strings();
  const nodeIds: number[] = []; // node index -> string id
  const redundancyIds = new Map<number, number>(); // kind << 16 | a << 8 | b -> string id
  const redIds = new Uint16Array(count);
  const layoutIds: (number | undefined)[] = [];
  let size = 1 + 2 + 4;
  for (let r = 0; r < count; r++) {
    const base = offsets[r]!;
    const end = offsets[r + 1]!;
    const key = keys[r]!;
    if (end - base < S.nodesAt || v[base] !== 1) corrupt('unknown format or truncated');
    const n = v[base + S.nodeCountAt]!;
    const tail = base + S.nodesAt + 4 * n;
    if (end < tail + S.tailBytes) corrupt('truncated');
    const ra = base + S.redundancyAt;
    const rk = (v[ra]! << 16) | (v[ra + 1]! << 8) | v[ra + 2]!;
    let rid = redundancyIds.get(rk);
    if (rid === undefined) {
      rid = t.id(redundancyName(v[ra]!, v[ra + 1]!, v[ra + 2]!));
      redundancyIds.set(rk, rid);
    }
    redIds[r] = rid;
    for (let at = base + S.nodesAt; at < tail; at += 4) {
      const idx = v[at]! | (v[at + 1]! << 8) | (v[at + 2]! << 16) | (v[at + 3]! << 24);
      if (idx < 0) corrupt(`node index ${idx >>> 0}`);
      nodeIds[idx] ??= t.id(nodeIdOf(idx));
    }
    const flag = v[tail + S.layoutFlagAt]!;
    let layoutBytes = 0;
    if (flag === 1) {
      const at = tail + S.layoutAt;
      if (end < at + 2) corrupt('truncated layout');
      const len = v[at]! | (v[at + 1]! << 8);
      if (end !== at + 2 + len + 2 + 16) corrupt('layout length');
      layoutIds[r] = t.id(Buffer.from(v.buffer, v.byteOffset + at + 2, len).toString('utf8'));
      layoutBytes = LAYOUT_WIRE_BYTES;
    } else if (flag !== 0 || end !== tail + S.tailBytes) corrupt(`layout flag ${flag}`);
    if (key.byteLength > 0xffff) corrupt('key too long');
    size += 2 + key.byteLength + 32 + 2 + 1 + 2 * n + 1 + 24 + layoutBytes;
  }
  const out = Buffer.allocUnsafe(size + t.bytes);
  let o = 0;
  out[o++] = PACKED_FORMAT;
  out.writeUInt16LE(t.list.length, o);
  o += 2;
  for (const b of t.list) {
    out.writeUInt16LE(b.length, o);
    b.copy(out, o + 2);
    o += 2 + b.length;
  }
  out.writeUInt32LE(count, o);
  o += 4;
  for (let r = 0; r < count; r++) {
    const base = offsets[r]!;
    const key = keys[r]!;
    const n = v[base + S.nodeCountAt]!;
    const tail = base + S.nodesAt + 4 * n;
    out[o] = key.byteLength & 0xff;
    out[o + 1] = key.byteLength >>> 8;
    copyBytes(key, 0, out, o + 2, key.byteLength);
    o += 2 + key.byteLength;
    // Wire order: writer's version, map version, then size and checksum (adjacent in both).
    copyBytes(v, base + S.writeVersionAt, out, o, 8);
    copyBytes(v, base + S.versionAt, out, o + 8, 8);
    copyBytes(v, base + S.sizeBytesAt, out, o + 16, S.checksumAt + 8 - S.sizeBytesAt);
    o += 32;
    const rid = redIds[r]!;
    out[o] = rid & 0xff;
    out[o + 1] = rid >>> 8;
    out[o + 2] = n;
    o += 3;
    for (let at = base + S.nodesAt; at < tail; at += 4) {
      const id = nodeIds[v[at]! | (v[at + 1]! << 8) | (v[at + 2]! << 16) | (v[at + 3]! << 24)]!;
      out[o] = id & 0xff;
      out[o + 1] = id >>> 8;
      o += 2;
    }
    const layoutId = layoutIds[r];
    out[o++] = (v[tail + S.stateAt] === 1 ? 1 : 0) | (v[tail + S.pinnedAt] === 1 ? 2 : 0) | (layoutId !== undefined ? 4 : 0);
    // createdAtMs, lastAccessMs, ttlMs: adjacent in both layouts.
    copyBytes(v, tail + S.createdAtMsAt, out, o, 24);
    o += 24;
    if (layoutId !== undefined) {
      const at = tail + S.layoutAt;
      const len = v[at]! | (v[at + 1]! << 8);
      const p = at + 2 + len; // u8 dtype | u8 memory format | 4 x u32
      out[o] = layoutId & 0xff;
      out[o + 1] = layoutId >>> 8;
      out.writeUInt32LE(v[p]!, o + 2);
      out.writeUInt32LE(v[p + 1]!, o + 6);
      copyBytes(v, p + 2, out, o + 10, 16);
      o += LAYOUT_WIRE_BYTES;
    }
  }
  if (o !== out.length) corrupt('size mismatch');
  return out;
}
