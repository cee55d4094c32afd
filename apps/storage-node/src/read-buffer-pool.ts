import type { ReadBufferPool } from '@tw/fragment-protocol';

/**
 * Buffers for GET replies, reused by size class, bounded in total bytes kept idle. Classes are
 * quarter steps between powers of two from 64 KiB (1 MiB, 1.25, 1.5, 1.75, 2, 2.5, ...): a
 * fragment of 8 MiB plus its 64-byte header takes a 10 MiB buffer, not a 16 MiB one, so at most
 * 25 % of a buffer is slack. A fresh multi-MiB buffer per read costs more in page faults than the read
 * itself; a buffer comes back only after its reply was written (transport `onSent`).
 */
export function readBufferClass(bytes: number): number {
  if (bytes <= 64 * 1024) return 64 * 1024;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

export function readBufferPool(idleBytesMax: number): ReadBufferPool & { idleBytes(): number } {
  const free = new Map<number, Buffer[]>();
  let idle = 0;
  const classOf = readBufferClass;
  return {
    acquire(bytes) {
      const size = classOf(bytes);
      const list = free.get(size);
      const buf = list?.pop();
      if (buf !== undefined) {
        idle -= buf.length;
        return buf;
      }
      return Buffer.allocUnsafe(size);
    },
    release(buf) {
      if (buf.length !== classOf(buf.length) || idle + buf.length > idleBytesMax) return;
      let list = free.get(buf.length);
      if (list === undefined) {
        list = [];
        free.set(buf.length, list);
      }
      list.push(buf);
      idle += buf.length;
    },
    idleBytes: () => idle,
  };
}
