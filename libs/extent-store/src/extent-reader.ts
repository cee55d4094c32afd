import { Checksum64Stream } from './checksum.js';
import type { FileHandle } from './file-layer.js';
import { RECORD_ALIGN_BYTES, SCAN_BUFFER_BYTES } from './limits.js';
import { parseHeader, RECORD_TRAILER_BYTES, type RecordHeader } from './record.js';

const ZERO_BLOCK = Buffer.alloc(RECORD_ALIGN_BYTES);
const ZERO_WINDOW = Buffer.alloc(SCAN_BUFFER_BYTES);

export type RecordAt =
  /** A complete record whose checksums hold. */
  | { kind: 'record'; header: RecordHeader; headerBytes: number; recordBytes: number; checksum: bigint }
  /** The header holds (so the length is known) but the trailing checksum fails. */
  | { kind: 'corrupt'; header: RecordHeader; recordBytes: number; reason: string }
  /** No record starts here (zeros, garbage, torn header). */
  | { kind: 'none'; zero: boolean; reason: string };

/**
 * Sequential reader over one extent through a bounded window buffer: scans never hold more
 * than `buf.byteLength` bytes of an extent in memory, whatever the record sizes.
 */
export class ExtentReader {
  #winStart = 0;
  #winEnd = 0;

  constructor(
    readonly handle: FileHandle,
    /** Bytes of the extent that may hold records. */
    readonly limitBytes: number,
    readonly buf: Buffer,
  ) {}

  /** `len` bytes at `pos` (len <= buffer size, clipped at the limit), valid until the next call. */
  async view(pos: number, len: number): Promise<Buffer> {
    const want = Math.min(len, this.limitBytes - pos);
    if (want <= 0) return this.buf.subarray(0, 0);
    if (pos >= this.#winStart && pos + want <= this.#winEnd) {
      return this.buf.subarray(pos - this.#winStart, pos - this.#winStart + want);
    }
    const fill = Math.min(this.buf.byteLength, this.limitBytes - pos);
    const n = await this.handle.readv([this.buf.subarray(0, fill)], pos);
    if (n < fill) this.buf.fill(0, n, fill); // past EOF reads as zeros, like a preallocated file
    this.#winStart = pos;
    this.#winEnd = pos + fill;
    return this.buf.subarray(0, want);
  }

  /**
   * First 4 KiB-aligned position at or after `pos` whose block is not all zeros (or the limit):
   * skips the unwritten part of a preallocated extent a window at a time.
   */
  async nextNonZero(pos: number): Promise<number> {
    let at = pos;
    while (at + RECORD_ALIGN_BYTES <= this.limitBytes) {
      const win = await this.view(at, this.buf.byteLength);
      const whole = win.byteLength - (win.byteLength % RECORD_ALIGN_BYTES);
      if (whole === 0) break;
      if (ZERO_WINDOW.byteLength >= whole && win.subarray(0, whole).equals(ZERO_WINDOW.subarray(0, whole))) {
        at += whole;
        continue;
      }
      for (let b = 0; b < whole; b += RECORD_ALIGN_BYTES) {
        if (!win.subarray(b, b + RECORD_ALIGN_BYTES).equals(ZERO_BLOCK)) return at + b;
      }
      at += whole;
    }
    return Math.min(at, this.limitBytes);
  }

  /**
   * Reads and verifies the record at `offset`. `sink`, when given, receives every byte of a
   * record (header, payload, trailer) in order, as views valid only during the call.
   */
  async recordAt(offset: number, sink?: (chunk: Buffer, relOffset: number) => Promise<void>): Promise<RecordAt> {
    const room = this.limitBytes - offset;
    if (room < RECORD_ALIGN_BYTES) return { kind: 'none', zero: true, reason: 'end of extent' };
    const first = await this.view(offset, RECORD_ALIGN_BYTES);
    if (first.equals(ZERO_BLOCK)) return { kind: 'none', zero: true, reason: 'zeros' };
    const parsed = parseHeader(first, first.byteLength, room);
    if (!parsed.ok) return { kind: 'none', zero: false, reason: parsed.reason };
    const { header, headerBytes } = parsed;
    const recordBytes = Math.ceil((headerBytes + header.payloadBytes + RECORD_TRAILER_BYTES) / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;
    const hash = new Checksum64Stream();
    const headerView = await this.view(offset, headerBytes);
    hash.update(headerView);
    if (sink) await sink(headerView, 0);
    const trailer = Buffer.alloc(RECORD_TRAILER_BYTES);
    const payloadEnd = headerBytes + header.payloadBytes;
    const end = payloadEnd + RECORD_TRAILER_BYTES;
    for (let rel = headerBytes; rel < end; ) {
      const chunk = await this.view(offset + rel, Math.min(this.buf.byteLength, end - rel));
      if (chunk.byteLength === 0) return { kind: 'corrupt', header, recordBytes, reason: 'record runs past the extent' };
      const payloadPart = Math.max(0, Math.min(chunk.byteLength, payloadEnd - rel));
      if (payloadPart > 0) hash.update(chunk.subarray(0, payloadPart));
      for (let i = payloadPart; i < chunk.byteLength; i++) trailer[rel + i - payloadEnd] = chunk[i]!;
      if (sink) await sink(chunk, rel);
      rel += chunk.byteLength;
    }
    const checksum = hash.digest();
    if (trailer.readBigUInt64LE(0) !== checksum) return { kind: 'corrupt', header, recordBytes, reason: 'trailing checksum mismatch' };
    return { kind: 'record', header, headerBytes, recordBytes, checksum };
  }
}
