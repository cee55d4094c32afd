import { blockFormatErrors } from './errors.js';

/**
 * Reads little-endian fields from untrusted bytes. Every read is bounds-checked and answers a
 * short buffer with TW_HEADER_TRUNCATED: decoders never throw TypeError or RangeError.
 */
export class ByteReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  #offset = 0;
  readonly #what: string;

  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#what = what;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#bytes.byteLength - this.#offset;
  }

  #need(n: number): number {
    if (this.#offset + n > this.#bytes.byteLength) {
      throw blockFormatErrors.create('TW_HEADER_TRUNCATED', `${this.#what} truncated: needed ${n} bytes at offset ${this.#offset}, have ${this.remaining}`, {
        details: { offset: this.#offset, needed: n, available: this.remaining },
      });
    }
    const at = this.#offset;
    this.#offset += n;
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
  u64(): bigint {
    return this.#view.getBigUint64(this.#need(8), true);
  }
  /** A u64 that must be an exact JS number no larger than `max`. */
  u64AsNumber(field: string, max: number): number {
    const v = this.u64();
    if (v > BigInt(max)) {
      throw blockFormatErrors.create('TW_HEADER_INVALID', `${this.#what} field ${field} = ${v} exceeds ${max}`, { details: { field } });
    }
    return Number(v);
  }
  bytes(n: number): Uint8Array {
    const at = this.#need(n);
    return this.#bytes.subarray(at, at + n);
  }
}

/** Writes little-endian fields into a buffer sized by the caller. */
export class ByteWriter {
  readonly #view: DataView;
  readonly bytes: Uint8Array;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(v: number): void {
    this.#view.setUint8(this.offset, v);
    this.offset += 1;
  }
  u16(v: number): void {
    this.#view.setUint16(this.offset, v, true);
    this.offset += 2;
  }
  u32(v: number): void {
    this.#view.setUint32(this.offset, v, true);
    this.offset += 4;
  }
  u64(v: bigint | number): void {
    this.#view.setBigUint64(this.offset, BigInt(v), true);
    this.offset += 8;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.offset);
    this.offset += b.byteLength;
  }
}
