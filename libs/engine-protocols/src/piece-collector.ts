/** Pieces shorter than this are gathered into a staging buffer rather than kept as views. */
const SMALL_PIECE_BYTES = 16 * 1024;
/** Largest staging buffer: the bounded step in which small pieces are copied. */
const STAGING_BYTES = 64 * 1024;

/**
 * Gathers a payload of announced length from received chunks without allocating for bytes that
 * have not arrived: large pieces are kept as views, small ones copied into staging buffers of at
 * most 64 KiB, and the whole is copied once at the end (or handed out as pieces).
 */
export class PieceCollector {
  readonly length: number;
  private got = 0;
  private parts: Buffer[] = [];
  private staging: Buffer | null = null;
  private stagingUsed = 0;

  constructor(length: number) {
    this.length = length;
  }

  get missing(): number {
    return this.length - this.got;
  }

  /** Takes up to `missing` bytes of `chunk` from `from`; returns how many it took. */
  take(chunk: Buffer, from: number): number {
    const n = Math.min(chunk.length - from, this.length - this.got);
    if (n <= 0) return 0;
    if ((this.got === 0 && n === this.length) || n >= SMALL_PIECE_BYTES) {
      this.flush();
      this.parts.push(chunk.subarray(from, from + n));
    } else {
      let at = from;
      let left = n;
      while (left > 0) {
        if (this.staging === null) {
          this.staging = Buffer.allocUnsafe(Math.min(STAGING_BYTES, this.length - this.got - (at - from)));
          this.stagingUsed = 0;
        }
        const k = Math.min(left, this.staging.length - this.stagingUsed);
        chunk.copy(this.staging, this.stagingUsed, at, at + k);
        this.stagingUsed += k;
        at += k;
        left -= k;
        if (this.stagingUsed === this.staging.length) this.flush();
      }
    }
    this.got += n;
    return n;
  }

  /** The complete payload as pieces (no copy). Only when `missing` is 0. */
  pieces(): Buffer[] {
    this.flush();
    return this.parts;
  }

  /** The complete payload as one buffer (one copy when it came in several pieces). */
  join(): Buffer {
    const parts = this.pieces();
    if (parts.length === 1) return parts[0]!;
    return Buffer.concat(parts, this.length);
  }

  private flush(): void {
    if (this.staging !== null && this.stagingUsed > 0) this.parts.push(this.staging.subarray(0, this.stagingUsed));
    this.staging = null;
    this.stagingUsed = 0;
  }
}
