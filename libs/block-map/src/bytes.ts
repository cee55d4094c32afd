/**
 * Little-endian writer and reader for the block map's commands, results and stored values.
 * The reader throws {@link DecodeError} on any malformed input; callers turn it into a coded
 * result (commands) or TW_BLOCKMAP_CORRUPT_STATE / TW_BLOCKMAP_BAD_SNAPSHOT (stored bytes).
 */

import { blockMapErrors } from './errors.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Thrown by {@link Reader} on malformed bytes; never escapes the package. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

function checkInt(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw blockMapErrors.create('TW_BLOCKMAP_BAD_COMMAND', `${what} ${String(v)} does not fit its field (0..${max})`, { details: { field: what } });
  }
}

/** A growable byte writer. `finish()` returns a view of exactly the bytes written. */
export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #at = 0;

  constructor(initialBytes = 256) {
    [this.#buf, this.#view] = Writer.#alloc(initialBytes);
  }

  /**
   * Small buffers come from Node's shared pool (Buffer.allocUnsafe), not one ArrayBuffer each:
   * the apply path encodes a record per block, and per-record ArrayBuffers were a visible share
   * of its garbage collection. Every byte handed out by finish() is written first.
   */
  static #alloc(n: number): [Uint8Array, DataView] {
    const b = Buffer.allocUnsafe(n);
    return [new Uint8Array(b.buffer, b.byteOffset, b.byteLength), new DataView(b.buffer, b.byteOffset, b.byteLength)];
  }

  get length(): number {
    return this.#at;
  }

  #room(n: number): number {
    if (this.#at + n > this.#buf.byteLength) {
      let size = this.#buf.byteLength * 2;
      while (size < this.#at + n) size *= 2;
      const [next, view] = Writer.#alloc(size);
      next.set(this.#buf.subarray(0, this.#at));
      this.#buf = next;
      this.#view = view;
    }
    const at = this.#at;
    this.#at += n;
    return at;
  }

  u8(v: number): this {
    checkInt(v, 0xff, 'u8');
    const at = this.#room(1);
    this.#view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    checkInt(v, 0xffff, 'u16');
    const at = this.#room(2);
    this.#view.setUint16(at, v, true);
    return this;
  }
  u32(v: number): this {
    checkInt(v, 0xffff_ffff, 'u32');
    const at = this.#room(4);
    this.#view.setUint32(at, v, true);
    return this;
  }
  /** A non-negative safe integer as u64. */
  u64(v: number): this {
    checkInt(v, Number.MAX_SAFE_INTEGER, 'u64');
    const at = this.#room(8);
    this.#view.setUint32(at, v % 0x1_0000_0000, true);
    this.#view.setUint32(at + 4, Math.floor(v / 0x1_0000_0000), true);
    return this;
  }
  big64(v: bigint): this {
    const at = this.#room(8);
    this.#view.setBigUint64(at, BigInt.asUintN(64, v), true);
    return this;
  }
  f64(v: number): this {
    const at = this.#room(8);
    this.#view.setFloat64(at, v, true);
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  raw(b: Uint8Array): this {
    const at = this.#room(b.byteLength); // may reallocate #buf: take the offset first
    this.#buf.set(b, at);
    return this;
  }
  /** u8 length + bytes (at most 255). */
  bytes8(b: Uint8Array): this {
    return this.u8(b.byteLength).raw(b);
  }
  /** u16 length + bytes (at most 65,535). */
  bytes16(b: Uint8Array): this {
    return this.u16(b.byteLength).raw(b);
  }
  /** u32 length + bytes. */
  bytes32(b: Uint8Array): this {
    return this.u32(b.byteLength).raw(b);
  }
  str8(s: string): this {
    // Fast path for short ASCII strings (node ids, namespaces): the same bytes as UTF-8, without
    // a TextEncoder call and an array per string (6 node ids per committed block).
    if (s.length <= 64) {
      let ascii = true;
      for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) ascii = false;
      if (ascii) {
        this.u8(s.length);
        const at = this.#room(s.length);
        for (let i = 0; i < s.length; i++) this.#buf[at + i] = s.charCodeAt(i);
        return this;
      }
    }
    return this.bytes8(utf8.encode(s));
  }
  str16(s: string): this {
    return this.bytes16(utf8.encode(s));
  }
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#at);
  }
}

export class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    // A plain view: subarray on a Buffer builds a Buffer (Node's species constructor) per field,
    // a visible share of decoding a command on the apply path (measured on the leader).
    this.#bytes = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.#bytes.byteLength - this.#at;
  }

  #need(n: number): number {
    if (this.#at + n > this.#bytes.byteLength) throw new DecodeError(`truncated: needed ${n} bytes at offset ${this.#at}`);
    const at = this.#at;
    this.#at += n;
    return at;
  }

  u8(): number {
    return this.#view.getUint8(this.#need(1));
  }
  u16(): number {
    return this.#view.getUint16(this.#need(2), true);
  }
  u32(): number {
    return this.#view.getUint32(this.#need(4), true);
  }
  /** A u64 that must be a safe integer. */
  u64(): number {
    const at = this.#need(8);
    const lo = this.#view.getUint32(at, true);
    const hi = this.#view.getUint32(at + 4, true);
    if (hi > 0x1f_ffff) throw new DecodeError(`u64 at offset ${at} exceeds 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }
  big64(): bigint {
    return this.#view.getBigUint64(this.#need(8), true);
  }
  f64(): number {
    return this.#view.getFloat64(this.#need(8), true);
  }
  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new DecodeError(`boolean byte ${v}`);
    return v === 1;
  }
  raw(n: number): Uint8Array {
    const at = this.#need(n);
    return this.#bytes.subarray(at, at + n);
  }
  bytes8(): Uint8Array {
    return this.raw(this.u8());
  }
  bytes16(): Uint8Array {
    return this.raw(this.u16());
  }
  bytes32(): Uint8Array {
    return this.raw(this.u32());
  }
  str8(): string {
    const n = this.u8();
    return stringAt(this.#bytes, this.#need(n), n);
  }
  str16(): string {
    return decodeUtf8(this.bytes16());
  }
  /** Throws unless every byte was read. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes`);
  }
}

/**
 * Short ASCII strings decoded before, by a hash of their bytes (bounded; emptied when full).
 * Commands name the same few node ids and namespaces over and over (6 node ids per committed
 * block): a hit returns the string without a view, a decode or a new string. A hit is checked
 * byte for byte, so the result is always the string the bytes spell.
 */
const INTERNED_MAX = 4096;
const INTERNED_BYTES_MAX = 32;
const interned = new Map<number, string>();

function stringAt(b: Uint8Array, at: number, n: number): string {
  if (n <= INTERNED_BYTES_MAX) {
    let h = n;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = b[at + i]!;
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      h = Math.imul(h ^ c, 0x0100_0193);
    }
    if (ascii) {
      const hit = interned.get(h);
      if (hit !== undefined && hit.length === n) {
        let same = true;
        for (let i = 0; i < n; i++) if (hit.charCodeAt(i) !== b[at + i]) same = false;
        if (same) return hit;
      }
      const s = String.fromCharCode.apply(null, b.subarray(at, at + n) as unknown as number[]);
      if (interned.size >= INTERNED_MAX) interned.clear();
      interned.set(h, s);
      return s;
    }
  }
  return decodeUtf8(b.subarray(at, at + n));
}

function decodeUtf8(b: Uint8Array): string {
  // Fast path for short ASCII (the common case): identical to UTF-8 decoding of these bytes.
  if (b.byteLength <= 64) {
    let ascii = true;
    for (let i = 0; i < b.byteLength; i++) if (b[i]! >= 0x80) ascii = false;
    if (ascii) return String.fromCharCode.apply(null, b as unknown as number[]);
  }
  try {
    return utf8Decoder.decode(b);
  } catch {
    throw new DecodeError('invalid UTF-8');
  }
}

/** Byte-wise comparison (the order of the KV store). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.byteLength - b.byteLength;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function utf8Bytes(s: string): Uint8Array {
  return utf8.encode(s);
}
