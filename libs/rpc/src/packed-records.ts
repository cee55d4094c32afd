/**
 * Packed binary forms of the two bulk messages of the control plane, carried in a `bytes` field
 * instead of hundreds of protobuf sub-messages whose 64-bit integers travel as decimal strings:
 *
 * - block records (LookupPrefixResponse.packed_records, when the request sets `packed`);
 * - block commits (CommitBlocksRequest.packed_blocks, instead of `blocks`);
 * - the keys of a lookup (LookupPrefixRequest.packed_keys, instead of `keys`): one bytes field
 *   instead of N length-delimited fields that the decoder turns into N Buffer objects.
 *
 * Layout (little-endian). Strings (node ids, redundancy policies, model ids) are written once in a
 * table and referred to by a u16 index:
 *
 *   u8 format (1) | u16 string count | { u16 length | UTF-8 bytes }... | u32 item count | items...
 *
 *   record: u16 keyLen | key | u64 version | u64 mapVersion | u64 sizeBytes | u64 checksum |
 *           u16 redundancy | u8 n | n x u16 node | u8 flags (1 deleting, 2 pinned, 4 layout) |
 *           u64 createdAtMs | u64 lastAccessMs | u64 ttlMs | [layout]
 *   commit: u16 keyLen | key | u64 sizeBytes | u64 checksum | u16 redundancy (0xffff: the
 *           namespace's) | u8 n | n x u16 node | u8 flags (2 pinned, 4 layout, 8 ttl, 16 version) |
 *           [u64 ttlMs] | [u64 version] | [layout]
 *   keys (no format byte, no string table): u32 count | { u16 length | key bytes }...
 *   layout: u16 modelId | u32 dtypeCode | u32 memoryFormatCode | u32 layers | u32 tokens |
 *           u32 kvHeads | u32 headDim
 *
 * Packed records leave out BlockRecord's `pg`: it is pgOf(namespace, key, pgCount) of the cluster
 * map, for the few callers that want it (hashing every key cost the coordinator ~1.4 us a record).
 *
 * u64 fields that are numbers on either side (sizes, times, map versions) must be safe integers;
 * the decoder refuses larger ones. Decoders check every bound and throw TW_RPC_BAD_PACKED.
 */
import { rpcErrors } from './errors.js';
import type { KvLayoutMsg } from './messages.js';

export const PACKED_FORMAT = 1;
/** Most strings in one table (indexes are u16; 0xffff means "none"). */
const STRINGS_MAX = 0xfffe;
const NONE = 0xffff;

/** A block record as the packed form carries it (numbers where JavaScript numbers are exact). */
export interface WireRecord {
  readonly key: Uint8Array;
  /** The version the writer stored the fragments under. */
  readonly version: bigint;
  /** The block map's commit order. */
  readonly mapVersion: number;
  readonly sizeBytes: number;
  readonly checksum: bigint;
  /** "ec:4+2", "replicate:3", "none". */
  readonly redundancy: string;
  readonly fragmentNodes: readonly string[];
  readonly state: 'committed' | 'deleting';
  readonly createdAtMs: number;
  readonly lastAccessMs: number;
  readonly ttlMs: number;
  readonly pinned: boolean;
  readonly layout: KvLayoutMsg | null;
}

/** A block to commit, as the packed form carries it. */
export interface WireBlockCommit {
  readonly key: Uint8Array;
  readonly sizeBytes: number;
  readonly checksum: bigint;
  /** Empty or absent: the namespace's policy. */
  readonly redundancy?: string;
  readonly fragmentNodes: readonly string[];
  readonly layout?: KvLayoutMsg | null;
  /** Absent or 0: the namespace's default TTL. */
  readonly ttlMs?: number;
  readonly pinned?: boolean;
  /** The version the fragments were stored under; absent or 0n: the map assigns one. */
  readonly version?: bigint;
}

const bad = (why: string): never => {
  throw rpcErrors.create('TW_RPC_BAD_PACKED', `packed message: ${why}`);
};

class StringTable {
  readonly index = new Map<string, number>();
  readonly list: Buffer[] = [];
  bytes = 0;
  id(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      if (this.list.length >= STRINGS_MAX) bad('too many distinct strings');
      const b = Buffer.from(s, 'utf8');
      if (b.length > 0xffff) bad('string too long');
      i = this.list.length;
      this.index.set(s, i);
      this.list.push(b);
      this.bytes += 2 + b.length;
    }
    return i;
  }
}

class Out {
  at = 0;
  /** DataView writes (see In). Callers size `buf` exactly; an overrun is a bug and throws RangeError. */
  readonly #view: DataView;
  constructor(readonly buf: Buffer) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(v: number): void {
    this.buf[this.at++] = v;
  }
  u16(v: number): void {
    this.#view.setUint16(this.at, v, true);
    this.at += 2;
  }
  u32(v: number): void {
    this.#view.setUint32(this.at, v >>> 0, true);
    this.at += 4;
  }
  /** A safe non-negative integer as u64. */
  num(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) bad(`${v} is not an unsigned safe integer`);
    this.#view.setUint32(this.at, v % 0x1_0000_0000, true);
    this.#view.setUint32(this.at + 4, Math.floor(v / 0x1_0000_0000), true);
    this.at += 8;
  }
  big(v: bigint): void {
    this.#view.setBigUint64(this.at, BigInt.asUintN(64, v), true);
    this.at += 8;
  }
  bytes(b: Uint8Array): void {
    if (b.byteLength > 0xffff) bad('key too long');
    this.u16(b.byteLength);
    this.buf.set(b, this.at);
    this.at += b.byteLength;
  }
}

class In {
  at = 0;
  /** DataView reads: inlined by V8, where Buffer#readUInt32LE and friends are calls with their own checks. */
  readonly #view: DataView;
  constructor(readonly buf: Buffer) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (this.at + n > this.buf.length) bad('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.#view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.#view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  num(): number {
    this.need(8);
    const lo = this.#view.getUint32(this.at, true);
    const hi = this.#view.getUint32(this.at + 4, true);
    this.at += 8;
    if (hi > 0x1f_ffff) bad('integer above 2^53');
    return hi * 0x1_0000_0000 + lo;
  }
  big(): bigint {
    this.need(8);
    const v = this.#view.getBigUint64(this.at, true);
    this.at += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u16();
    this.need(n);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
}

function writeTable(o: Out, t: StringTable): void {
  o.u16(t.list.length);
  for (const b of t.list) {
    o.u16(b.length);
    b.copy(o.buf, o.at);
    o.at += b.length;
  }
}

function readTable(i: In): string[] {
  const n = i.u16();
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const len = i.u16();
    i.need(len);
    out.push(i.buf.toString('utf8', i.at, i.at + len));
    i.at += len;
  }
  return out;
}

const LAYOUT_BYTES = 2 + 6 * 4;

function writeLayout(o: Out, t: StringTable, l: KvLayoutMsg): void {
  o.u16(t.id(l.modelId));
  o.u32(l.dtypeCode);
  o.u32(l.memoryFormatCode);
  o.u32(l.layers);
  o.u32(l.tokens);
  o.u32(l.kvHeads);
  o.u32(l.headDim);
}

function readLayout(i: In, strings: readonly string[]): KvLayoutMsg {
  return { modelId: str(strings, i.u16()), dtypeCode: i.u32(), memoryFormatCode: i.u32(), layers: i.u32(), tokens: i.u32(), kvHeads: i.u32(), headDim: i.u32() };
}

function str(strings: readonly string[], i: number): string {
  const s = strings[i];
  if (s === undefined) bad(`string index ${i} outside a table of ${strings.length}`);
  return s!;
}

function nodes(i: In, strings: readonly string[]): string[] {
  const n = i.u8();
  const out = new Array<string>(n);
  for (let k = 0; k < n; k++) out[k] = str(strings, i.u16());
  return out;
}

/** Packs block records (a LookupPrefix answer). */
export function encodeWireRecords(records: readonly WireRecord[]): Buffer {
  const t = new StringTable();
  let size = 1 + 2 + 4;
  // String indexes of each record (redundancy, then its nodes), found once.
  const ids: number[] = [];
  for (const r of records) {
    if (r.fragmentNodes.length > 255) bad('more than 255 fragment nodes');
    ids.push(t.id(r.redundancy));
    for (const n of r.fragmentNodes) ids.push(t.id(n));
    if (r.layout !== null) t.id(r.layout.modelId);
    size += 2 + r.key.byteLength + 8 * 7 + 2 + 1 + 2 * r.fragmentNodes.length + 1 + (r.layout === null ? 0 : LAYOUT_BYTES);
  }
  const o = new Out(Buffer.allocUnsafe(size + t.bytes));
  o.u8(PACKED_FORMAT);
  writeTable(o, t);
  o.u32(records.length);
  let at = 0;
  for (const r of records) {
    o.bytes(r.key);
    o.big(r.version);
    o.num(r.mapVersion);
    o.num(r.sizeBytes);
    o.big(r.checksum);
    o.u16(ids[at++]!);
    o.u8(r.fragmentNodes.length);
    for (let k = 0; k < r.fragmentNodes.length; k++) o.u16(ids[at++]!);
    o.u8((r.state === 'deleting' ? 1 : 0) | (r.pinned ? 2 : 0) | (r.layout !== null ? 4 : 0));
    o.num(r.createdAtMs);
    o.num(r.lastAccessMs);
    o.num(r.ttlMs);
    if (r.layout !== null) writeLayout(o, t, r.layout);
  }
  return o.buf.subarray(0, o.at);
}

/** Unpacks block records; keys are views into `bytes`. Throws TW_RPC_BAD_PACKED. */
export function decodeWireRecords(bytes: Uint8Array): WireRecord[] {
  const i = new In(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (i.u8() !== PACKED_FORMAT) bad('unknown format');
  const strings = readTable(i);
  const n = i.u32();
  if (n > i.buf.length) bad('record count beyond the message');
  const out: WireRecord[] = new Array<WireRecord>(n);
  for (let k = 0; k < n; k++) {
    const key = i.bytes();
    const version = i.big();
    const mapVersion = i.num();
    const sizeBytes = i.num();
    const checksum = i.big();
    const redundancy = str(strings, i.u16());
    const fragmentNodes = nodes(i, strings);
    const flags = i.u8();
    if (flags > 7) bad(`record flags ${flags}`);
    const createdAtMs = i.num();
    const lastAccessMs = i.num();
    const ttlMs = i.num();
    const layout = (flags & 4) !== 0 ? readLayout(i, strings) : null;
    out[k] = { key, version, mapVersion, sizeBytes, checksum, redundancy, fragmentNodes, state: (flags & 1) !== 0 ? 'deleting' : 'committed', createdAtMs, lastAccessMs, ttlMs, pinned: (flags & 2) !== 0, layout };
  }
  if (i.at !== i.buf.length) bad('trailing bytes');
  return out;
}

/** Packs block commits (a CommitBlocks request). */
export function encodeWireCommits(blocks: readonly WireBlockCommit[]): Buffer {
  const t = new StringTable();
  let size = 1 + 2 + 4;
  for (const b of blocks) {
    if (b.redundancy) t.id(b.redundancy);
    for (const n of b.fragmentNodes) t.id(n);
    if (b.layout) t.id(b.layout.modelId);
    size += 2 + b.key.byteLength + 16 + 2 + 1 + 2 * b.fragmentNodes.length + 1 + 16 + (b.layout ? LAYOUT_BYTES : 0);
  }
  const o = new Out(Buffer.allocUnsafe(size + t.bytes));
  o.u8(PACKED_FORMAT);
  writeTable(o, t);
  o.u32(blocks.length);
  for (const b of blocks) {
    o.bytes(b.key);
    o.num(b.sizeBytes);
    o.big(b.checksum);
    o.u16(b.redundancy ? t.id(b.redundancy) : NONE);
    if (b.fragmentNodes.length > 255) bad('more than 255 fragment nodes');
    o.u8(b.fragmentNodes.length);
    for (const n of b.fragmentNodes) o.u16(t.id(n));
    const ttl = b.ttlMs ?? 0;
    const version = b.version ?? 0n;
    o.u8((b.pinned ? 2 : 0) | (b.layout ? 4 : 0) | (ttl > 0 ? 8 : 0) | (version !== 0n ? 16 : 0));
    if (ttl > 0) o.num(ttl);
    if (version !== 0n) o.big(version);
    if (b.layout) writeLayout(o, t, b.layout);
  }
  return o.buf.subarray(0, o.at);
}

/** Unpacks block commits; keys are views into `bytes`. Throws TW_RPC_BAD_PACKED. */
export function decodeWireCommits(bytes: Uint8Array): WireBlockCommit[] {
  const i = new In(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (i.u8() !== PACKED_FORMAT) bad('unknown format');
  const strings = readTable(i);
  const n = i.u32();
  if (n > i.buf.length) bad('block count beyond the message');
  const out: WireBlockCommit[] = new Array<WireBlockCommit>(n);
  for (let k = 0; k < n; k++) {
    const key = i.bytes();
    const sizeBytes = i.num();
    const checksum = i.big();
    const r = i.u16();
    const redundancy = r === NONE ? '' : str(strings, r);
    const fragmentNodes = nodes(i, strings);
    const flags = i.u8();
    if ((flags & ~(2 | 4 | 8 | 16)) !== 0) bad(`commit flags ${flags}`);
    const ttlMs = (flags & 8) !== 0 ? i.num() : 0;
    const version = (flags & 16) !== 0 ? i.big() : 0n;
    const layout = (flags & 4) !== 0 ? readLayout(i, strings) : null;
    out[k] = { key, sizeBytes, checksum, redundancy, fragmentNodes, layout, ttlMs, pinned: (flags & 2) !== 0, version };
  }
  if (i.at !== i.buf.length) bad('trailing bytes');
  return out;
}

/** Packs the versions of a CommitBlocks answer (u64 each, in block order). */
export function encodeWireVersions(versions: readonly bigint[]): Buffer {
  const b = Buffer.allocUnsafe(8 * versions.length);
  for (let k = 0; k < versions.length; k++) b.writeBigUInt64LE(BigInt.asUintN(64, versions[k]!), 8 * k);
  return b;
}

export function decodeWireVersions(bytes: Uint8Array): bigint[] {
  if (bytes.byteLength % 8 !== 0) bad('versions are not a whole number of u64s');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<bigint>(b.length / 8);
  for (let k = 0; k < out.length; k++) out[k] = b.readBigUInt64LE(8 * k);
  return out;
}

/** Packs the keys of a LookupPrefix request (`packedKeys`). */
export function encodeWireKeys(keys: readonly Uint8Array[]): Buffer {
  let size = 4;
  for (const k of keys) {
    if (k.byteLength > 0xffff) bad('key too long');
    size += 2 + k.byteLength;
  }
  const o = new Out(Buffer.allocUnsafe(size));
  o.u32(keys.length);
  for (const k of keys) o.bytes(k);
  return o.buf;
}

/** The key count of packed keys, read before unpacking them (to refuse an oversized request cheaply). */
export function wireKeyCount(bytes: Uint8Array): number {
  if (bytes.byteLength < 4) bad('truncated');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(0);
}

/** Unpacks keys; each is a view into `bytes`. Throws TW_RPC_BAD_PACKED. */
export function decodeWireKeys(bytes: Uint8Array): Buffer[] {
  const i = new In(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const n = i.u32();
  // Each key takes at least its 2-byte length: a count past that is a lie, not an allocation.
  if (n * 2 > i.buf.length - 4) bad('key count beyond the message');
  const out = new Array<Buffer>(n);
  for (let k = 0; k < n; k++) out[k] = i.bytes();
  if (i.at !== i.buf.length) bad('trailing bytes');
  return out;
}
