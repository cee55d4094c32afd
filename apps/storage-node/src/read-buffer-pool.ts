import type { ReadBufferPool } from '@tw/fragment-protocol';

/**
 * Buffers for GET replies, reused by size class (powers of two from 64 KiB), bounded in total
 * bytes kept idle. A fresh multi-MiB buffer per read costs more in page faults than the read
 * itself; a buffer comes back only after its reply was written (transport `onSent`).
 */
export function readBufferPool(idleBytesMax: number): ReadBufferPool & { idleBytes(): number } {
  const free = new Map<number, Buffer[]>();
  let idle = 0;
  const classOf = (bytes: number): number => Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
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
