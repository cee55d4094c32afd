import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { extentLimits, nodeFileLayer } from '../src/index.js';

describe('nodeFileLayer writes', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  // Inline (event-loop thread) writes up to syncWriteBytesMax, thread-pool writes above: both
  // must land every byte of every buffer at its position, and fail the same way.
  for (const syncWriteBytesMax of [0, 4096, 1 << 20]) {
    it(`lands gathered writes byte for byte (inline up to ${syncWriteBytesMax} bytes)`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
      dirs.push(dir);
      const layer = nodeFileLayer({ syncWriteBytesMax });
      const h = await layer.open(join(dir, 'f'), 'create');
      try {
        const parts = [1000, 3096, 70_000, 1].map((n, i) => Buffer.alloc(n, i + 1));
        await h.writev(parts.slice(0, 2), 0); // 4,096 bytes
        await h.writev(parts.slice(2), 8192); // 70,001 bytes, past a hole
        await h.datasync();
        const back = Buffer.alloc(8192 + 70_001);
        expect(await h.readv([back], 0)).toBe(back.byteLength);
        expect(back.subarray(0, 1000).every((x) => x === 1)).toBe(true);
        expect(back.subarray(1000, 4096).every((x) => x === 2)).toBe(true);
        expect(back.subarray(4096, 8192).every((x) => x === 0)).toBe(true);
        expect(back.subarray(8192, 78_192).every((x) => x === 3)).toBe(true);
        expect(back[78_192]).toBe(4);
      } finally {
        await h.close();
      }
    });

    it(`rejects a write to a read-only handle with the system error (inline up to ${syncWriteBytesMax} bytes)`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
      dirs.push(dir);
      const layer = nodeFileLayer({ syncWriteBytesMax });
      await (await layer.open(join(dir, 'f'), 'create')).close();
      const h = await layer.open(join(dir, 'f'), 'r');
      try {
        await expect(h.writev([Buffer.alloc(10)], 0)).rejects.toMatchObject({ code: 'EBADF' });
      } finally {
        await h.close();
      }
    });

    it(`rejects a write to a closed handle with EBADF (inline up to ${syncWriteBytesMax} bytes)`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
      dirs.push(dir);
      const h = await nodeFileLayer({ syncWriteBytesMax }).open(join(dir, 'f'), 'create');
      await h.close();
      await expect(h.writev([Buffer.alloc(10)], 0)).rejects.toMatchObject({ code: 'EBADF' });
    });
  }

  it('sends writes to the thread pool for a while after an inline write was slow, then inline again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
    dirs.push(dir);
    // A fake clock: each reading advances it by `step` ms (the write between two readings "took" step).
    let now = 0;
    let step = 0.1;
    const layer = nodeFileLayer({ nowMs: () => (now += step) });
    const h = await layer.open(join(dir, 'f'), 'create');
    try {
      const small = [Buffer.alloc(4096, 1)];
      await h.writev(small, 0);
      expect(layer.writeStats).toEqual({ inlineWrites: 1, pooledWrites: 0, inlinePauses: 0 });
      step = 5; // slower than SYNC_WRITE_SLOW_MS: the next writes go to the pool
      await h.writev(small, 4096);
      expect(layer.writeStats).toEqual({ inlineWrites: 2, pooledWrites: 0, inlinePauses: 1 });
      step = 0.1;
      await h.writev(small, 8192);
      await h.writev(small, 12_288);
      expect(layer.writeStats).toEqual({ inlineWrites: 2, pooledWrites: 2, inlinePauses: 1 });
      now += extentLimits.SYNC_WRITE_PAUSE_MS; // the pause is over
      await h.writev(small, 16_384);
      expect(layer.writeStats).toEqual({ inlineWrites: 3, pooledWrites: 2, inlinePauses: 1 });
      const back = Buffer.alloc(5 * 4096);
      expect(await h.readv([back], 0)).toBe(back.byteLength);
      expect(back.every((x) => x === 1)).toBe(true);
    } finally {
      await h.close();
    }
  });

  for (const syncReadBytesMax of [0, 4096, 1 << 20]) {
    it(`reads gathered buffers byte for byte, latency-sensitive or not (inline up to ${syncReadBytesMax} bytes)`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
      dirs.push(dir);
      const layer = nodeFileLayer({ syncReadBytesMax, nowMs: () => 0 });
      const h = await layer.open(join(dir, 'f'), 'create');
      try {
        const data = Buffer.alloc(70_001);
        for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
        await h.writev([data], 100);
        for (const latencySensitive of [true, false]) {
          for (const [pos, sizes] of [[100, [10, 4086]], [1000, [69_000, 101]], [69_000, [500, 2000]]] as const) {
            const bufs = sizes.map((n) => Buffer.alloc(n, 0xee));
            const n = await h.readv(bufs, pos, { latencySensitive });
            const expected = Math.min(sizes[0]! + sizes[1]!, 70_101 - pos);
            expect(n).toBe(expected);
            expect(Buffer.concat(bufs).subarray(0, n).equals(data.subarray(pos - 100, pos - 100 + n))).toBe(true);
          }
        }
        const inlineEligible = (n: number): boolean => n <= syncReadBytesMax;
        const sensitive = [4096, 69_101, 2500];
        expect(layer.readStats).toEqual({ inlineReads: sensitive.filter(inlineEligible).length, pooledReads: sensitive.filter((n) => !inlineEligible(n)).length, inlinePauses: 0, slowCachedReads: 0 });
      } finally {
        await h.close();
      }
    });
  }

  it('rejects a latency-sensitive read of a closed handle with EBADF', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
    dirs.push(dir);
    const h = await nodeFileLayer().open(join(dir, 'f'), 'create');
    await h.close();
    await expect(h.readv([Buffer.alloc(10)], 0, { latencySensitive: true })).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('sends reads to the thread pool for a while after an inline read was slow (missed the page cache), then inline again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
    dirs.push(dir);
    // A fake clock: each reading advances it by `step` ms (the read between two readings "took" step).
    let now = 0;
    let step = 0.01;
    // A fake block-input counter: the slow read below "went to the disk".
    let blocks = 0;
    const layer = nodeFileLayer({ nowMs: () => (now += step), blockReadsSoFar: () => blocks });
    const h = await layer.open(join(dir, 'f'), 'create');
    try {
      await h.writev([Buffer.alloc(4096 * 5, 1)], 0);
      const b = Buffer.alloc(4096);
      const read = (i: number): Promise<number> => h.readv([b], i * 4096, { latencySensitive: true });
      await read(0);
      expect(layer.readStats).toEqual({ inlineReads: 1, pooledReads: 0, inlinePauses: 0, slowCachedReads: 0 });
      step = 1; // slower than a page-cache copy of 4 KiB, and the process read 8 blocks: the next reads go to the pool
      blocks += 8;
      await read(1);
      expect(layer.readStats).toEqual({ inlineReads: 2, pooledReads: 0, inlinePauses: 1, slowCachedReads: 0 });
      step = 0.01;
      await read(2);
      await read(3);
      // Not latency-sensitive: neither inline nor counted.
      await h.readv([b], 0);
      expect(layer.readStats).toEqual({ inlineReads: 2, pooledReads: 2, inlinePauses: 1, slowCachedReads: 0 });
      now += extentLimits.SYNC_READ_PAUSE_MS; // the pause is over
      expect(await read(4)).toBe(4096);
      expect(layer.readStats).toEqual({ inlineReads: 3, pooledReads: 2, inlinePauses: 1, slowCachedReads: 0 });
      expect(b.every((x) => x === 1)).toBe(true);
      // Writes have their own pause: a slow read did not pause them.
      expect(layer.writeStats.inlinePauses).toBe(0);
    } finally {
      await h.close();
    }
  });

  it('a slow inline read with no block input (it waited for a CPU) does not pause the path; one slower than the stall bound does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
    dirs.push(dir);
    let now = 0;
    let step = 0.01;
    let blocks = 100; // whatever the process read before the layer existed does not count
    const layer = nodeFileLayer({ nowMs: () => (now += step), blockReadsSoFar: () => blocks });
    const h = await layer.open(join(dir, 'f'), 'create');
    try {
      await h.writev([Buffer.alloc(4096 * 8, 2)], 0);
      const b = Buffer.alloc(4096);
      const read = (i: number): Promise<number> => h.readv([b], i * 4096, { latencySensitive: true });
      step = 1; // slow, nothing read from disk: preempted mid-copy
      await read(0);
      await read(1);
      expect(layer.readStats).toEqual({ inlineReads: 2, pooledReads: 0, inlinePauses: 0, slowCachedReads: 2 });
      // Block reads that happened between two slow reads (a compaction, say) make the next slow one pause.
      blocks += 1;
      step = 0.01;
      await read(2); // fast: the counter is not even asked
      step = 1;
      await read(3);
      expect(layer.readStats).toEqual({ inlineReads: 4, pooledReads: 0, inlinePauses: 1, slowCachedReads: 2 });
      now += extentLimits.SYNC_READ_PAUSE_MS;
      // Slower than the stall bound with no block input (a file system without block I/O): pauses.
      step = extentLimits.SYNC_READ_STALL_MS + 1;
      await read(4);
      expect(layer.readStats).toEqual({ inlineReads: 5, pooledReads: 0, inlinePauses: 2, slowCachedReads: 2 });
      step = 0.01;
      expect(await read(5)).toBe(4096);
      expect(layer.readStats).toEqual({ inlineReads: 5, pooledReads: 1, inlinePauses: 2, slowCachedReads: 2 });
      expect(b.every((x) => x === 2)).toBe(true);
    } finally {
      await h.close();
    }
  });

  it('a failed inline read or write pauses its inline path too (a failing disk may take seconds to fail)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
    dirs.push(dir);
    let now = 0;
    const layer = nodeFileLayer({ nowMs: () => (now += 0.01) });
    // read(2) of a directory fails (EISDIR); write(2) to a read-only descriptor fails (EBADF).
    const d = await layer.open(dir, 'r');
    await (await layer.open(join(dir, 'f'), 'create')).close();
    const ro = await layer.open(join(dir, 'f'), 'r');
    try {
      await expect(d.readv([Buffer.alloc(4096)], 0, { latencySensitive: true })).rejects.toMatchObject({ code: 'EISDIR' });
      expect(layer.readStats).toEqual({ inlineReads: 1, pooledReads: 0, inlinePauses: 1, slowCachedReads: 0 });
      await expect(d.readv([Buffer.alloc(4096)], 0, { latencySensitive: true })).rejects.toMatchObject({ code: 'EISDIR' });
      expect(layer.readStats).toEqual({ inlineReads: 1, pooledReads: 1, inlinePauses: 1, slowCachedReads: 0 });
      await expect(ro.writev([Buffer.alloc(4096)], 0)).rejects.toMatchObject({ code: 'EBADF' });
      expect(layer.writeStats).toEqual({ inlineWrites: 1, pooledWrites: 0, inlinePauses: 1 });
      await expect(ro.writev([Buffer.alloc(4096)], 0)).rejects.toMatchObject({ code: 'EBADF' });
      expect(layer.writeStats).toEqual({ inlineWrites: 1, pooledWrites: 1, inlinePauses: 1 });
    } finally {
      await d.close();
      await ro.close();
    }
  });

  it('preallocates with zeros through the thread pool, the file reading back as zeros', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-nfl-'));
    dirs.push(dir);
    const h = await nodeFileLayer({ preallocate: 'zeros' }).open(join(dir, 'f'), 'create');
    try {
      await h.writev([Buffer.alloc(100, 9)], 0);
      await h.allocate(3 * 1024 * 1024 + 5);
      expect((await h.stat()).sizeBytes).toBe(3 * 1024 * 1024 + 5);
      const back = Buffer.alloc(3 * 1024 * 1024 + 5);
      expect(await h.readv([back], 0)).toBe(back.byteLength);
      expect(back.subarray(0, 100).every((x) => x === 9)).toBe(true);
      expect(back.subarray(100).every((x) => x === 0)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
