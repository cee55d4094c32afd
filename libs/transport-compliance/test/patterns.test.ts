import { describe, expect, it } from 'vitest';
import { fillPattern, hasPattern, pattern, seededRandom } from '../src/index.js';

describe('compliance test patterns', () => {
  it('is deterministic per seed and differs across seeds', () => {
    expect(pattern(10_000, 1).equals(pattern(10_000, 1))).toBe(true);
    expect(pattern(10_000, 1).equals(pattern(10_000, 2))).toBe(false);
    const a = seededRandom(9);
    const b = seededRandom(9);
    expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
  });

  it('detects a flipped byte, a swapped block and a truncation', () => {
    const buf = pattern(64 * 1024, 5);
    expect(hasPattern(buf, 5)).toBe(true);
    const flipped = Buffer.from(buf);
    flipped[40_000] = flipped[40_000]! ^ 1;
    expect(hasPattern(flipped, 5)).toBe(false);
    // Blocks are stamped with their index: swapping two whole 4 KiB blocks is caught too.
    const swapped = Buffer.from(buf);
    buf.copy(swapped, 0, 4096, 8192);
    buf.copy(swapped, 4096, 0, 4096);
    expect(hasPattern(swapped, 5)).toBe(false);
    expect(hasPattern(buf.subarray(0, 1000), 5)).toBe(true);
    expect(hasPattern(buf.subarray(4096, 8192), 5)).toBe(false);
  });

  it('fills views in place', () => {
    const backing = Buffer.alloc(20_000, 0xff);
    const view = backing.subarray(100, 10_100);
    fillPattern(view, 3);
    expect(hasPattern(view, 3)).toBe(true);
    expect(backing.subarray(0, 100).every((x) => x === 0xff)).toBe(true);
    expect(backing.subarray(10_100).every((x) => x === 0xff)).toBe(true);
  });
});
