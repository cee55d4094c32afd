import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readBufferClass, readBufferPool } from '../src/read-buffer-pool.js';

describe('read buffer pool', () => {
  it('size classes hold the request with at most 25 % slack and are fixed points', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1024 * 1024 * 1024 }), (bytes) => {
        const c = readBufferClass(bytes);
        expect(c).toBeGreaterThanOrEqual(bytes);
        if (bytes > 64 * 1024) expect(c).toBeLessThanOrEqual(bytes * 1.25 + 1);
        expect(readBufferClass(c)).toBe(c);
      }),
      { seed: 3, numRuns: 2000 },
    );
    expect(readBufferClass(8 * 1024 * 1024 + 64)).toBe(10 * 1024 * 1024);
    expect(readBufferClass(8 * 1024 * 1024)).toBe(8 * 1024 * 1024);
  });

  it('reuses released buffers of the same class and keeps idle bytes under the cap', () => {
    const pool = readBufferPool(24 * 1024 * 1024);
    const a = pool.acquire(8 * 1024 * 1024 + 64);
    const b = pool.acquire(8 * 1024 * 1024 + 64);
    const c = pool.acquire(8 * 1024 * 1024 + 64);
    expect(a.length).toBe(10 * 1024 * 1024);
    pool.release(a);
    pool.release(b);
    pool.release(c); // over the 24 MiB cap: the oldest idle one (a) makes room
    expect(pool.idleBytes()).toBe(20 * 1024 * 1024);
    expect(pool.acquire(9 * 1024 * 1024) === c).toBe(true); // the newest first
    expect(pool.acquire(9 * 1024 * 1024) === b).toBe(true);
    expect(pool.acquire(9 * 1024 * 1024) === a).toBe(false);
    expect(pool.idleBytes()).toBe(0);
    pool.release(b);
    pool.release(Buffer.allocUnsafe(3 * 1024 * 1024 + 1)); // not a class size: never pooled
    expect(pool.idleBytes()).toBe(10 * 1024 * 1024);
  });

  it('a size in use takes the place of idle buffers of sizes no longer asked for', () => {
    const MiB = 1024 * 1024;
    const pool = readBufferPool(64 * MiB);
    const old = Array.from({ length: 12 }, () => pool.acquire(4 * MiB + 64)); // 5 MiB class
    for (const b of old) pool.release(b);
    expect(pool.idleBytes()).toBe(60 * MiB);
    const big = Array.from({ length: 5 }, () => pool.acquire(8 * MiB + 64)); // 10 MiB class, all fresh
    for (const b of big) pool.release(b);
    expect(pool.idleBytes()).toBeLessThanOrEqual(64 * MiB);
    // Every 10 MiB buffer stayed; the 5 MiB ones gave way, oldest first.
    // (Identity checked with ===: a failing toBe on 10 MiB buffers prints them.)
    for (const b of big.reverse()) expect(pool.acquire(8 * MiB + 64) === b).toBe(true);
    expect(pool.idleBytes()).toBe(2 * 5 * MiB);
    expect(pool.acquire(4 * MiB + 64) === old[11]).toBe(true);
    expect(pool.acquire(4 * MiB + 64) === old[10]).toBe(true);
    pool.release(Buffer.allocUnsafe(80 * MiB)); // larger than the cap: never kept
    expect(pool.idleBytes()).toBe(0);
  });
});
