import { BUFFER_POOL_GRANULE_BYTES } from './limits.js';

/**
 * Reusable receive buffers for fragment reads, bucketed by size rounded up to a granule so that
 * blocks of one size reuse each other's buffers. Holds at most `maxBytes` of free buffers.
 * A buffer must be returned only once nothing can write into it any more (the transport stops
 * writing into `into` once the call settled).
 */
export class BufferPool {
  readonly #free = new Map<number, Buffer[]>();
  #freeBytes = 0;

  constructor(private readonly maxBytes: number) {}

  static sizeClass(bytes: number): number {
    return Math.max(BUFFER_POOL_GRANULE_BYTES, Math.ceil(bytes / BUFFER_POOL_GRANULE_BYTES) * BUFFER_POOL_GRANULE_BYTES);
  }

  take(bytes: number): Buffer {
    const size = BufferPool.sizeClass(bytes);
    const list = this.#free.get(size);
    const buf = list?.pop();
    if (buf !== undefined) {
      this.#freeBytes -= size;
      return buf;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  give(buf: Buffer): void {
    const size = buf.length;
    if (size !== BufferPool.sizeClass(size) || this.#freeBytes + size > this.maxBytes) return;
    let list = this.#free.get(size);
    if (list === undefined) {
      list = [];
      this.#free.set(size, list);
    }
    list.push(buf);
    this.#freeBytes += size;
  }

  get freeBytes(): number {
    return this.#freeBytes;
  }
}
