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
    pool.release(c); // over the 24 MiB cap: dropped
    expect(pool.idleBytes()).toBe(20 * 1024 * 1024);
    expect(pool.acquire(9 * 1024 * 1024)).toBe(b);
    expect(pool.idleBytes()).toBe(10 * 1024 * 1024);
    pool.release(Buffer.allocUnsafe(3 * 1024 * 1024 + 1)); // not a class size: never pooled
    expect(pool.idleBytes()).toBe(10 * 1024 * 1024);
  });
});
