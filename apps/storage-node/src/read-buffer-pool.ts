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
  // Per class, idle buffers oldest first, each with the tick it was released at. Acquire takes the
  // newest (warmest in cache); a release over the cap drops the oldest idle buffers of any class,
  // so buffers of sizes no longer asked for give way to the sizes in use. (Dropping the released
  // one instead kept stale classes forever: after 4 MiB traffic, 8 MiB requests at 16 in flight
  // got a fresh 10 MiB buffer each time, ~2,500 page faults apiece.)
  const free = new Map<number, { buf: Buffer; tick: number }[]>();
  let idle = 0;
  let tick = 0;
  const classOf = readBufferClass;
  const evictOldest = (): void => {
    let oldest: { buf: Buffer; tick: number }[] | undefined;
    for (const list of free.values()) if (list.length > 0 && (oldest === undefined || list[0]!.tick < oldest[0]!.tick)) oldest = list;
    idle -= oldest!.shift()!.buf.length;
  };
  return {
    acquire(bytes) {
      const size = classOf(bytes);
      const got = free.get(size)?.pop();
      if (got !== undefined) {
        idle -= got.buf.length;
        return got.buf;
      }
      return Buffer.allocUnsafe(size);
    },
    release(buf) {
      if (buf.length !== classOf(buf.length) || buf.length > idleBytesMax) return;
      while (idle + buf.length > idleBytesMax) evictOldest();
      let list = free.get(buf.length);
      if (list === undefined) {
        list = [];
        free.set(buf.length, list);
      }
      list.push({ buf, tick: tick++ });
      idle += buf.length;
    },
    idleBytes: () => idle,
  };
}
