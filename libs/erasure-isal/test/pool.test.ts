import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, expect, test } from 'vitest';
import { allocCodingBuffer, isal } from '../src/binding.js';
import { POOL_FREE_MAX_BYTES, POOL_MIN_BYTES } from '../src/limits.js';
import { createIsalCodec, isalPoolStats } from '../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage until the pool holds at least `minBlocks` free blocks (bounded tries). */
async function collectInto(minBlocks: number): Promise<void> {
  for (let i = 0; i < 20 && isalPoolStats().freeBlocks < minBlocks; i++) {
    gc();
    // External-buffer finalizers run from the event loop after the collection.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

afterEach(() => {
  isal().poolConfigure(POOL_FREE_MAX_BYTES);
});

test('small buffers come from Node, large ones from the pool; sizes are exact', () => {
  expect(allocCodingBuffer(0)).toHaveLength(0);
  expect(allocCodingBuffer(POOL_MIN_BYTES - 1)).toHaveLength(POOL_MIN_BYTES - 1);
  const before = isalPoolStats();
  const big = allocCodingBuffer(POOL_MIN_BYTES + 3);
  expect(big).toHaveLength(POOL_MIN_BYTES + 3);
  const after = isalPoolStats();
  expect(after.hits + after.misses).toBe(before.hits + before.misses + 1);
  expect(() => isal().alloc(0)).toThrow(expect.objectContaining({ code: 'ISAL_BAD_ARGUMENT' }));
  expect(() => isal().alloc(-5)).toThrow(expect.objectContaining({ code: 'ISAL_BAD_ARGUMENT' }));
});

test('collected buffers are reused, and reuse never touches a buffer still alive', async () => {
  const size = 1 << 20;
  const live: Buffer[] = [];
  for (let round = 0; round < 4; round++) {
    let dropped = 0;
    for (let i = 0; i < 8; i++) {
      const b = allocCodingBuffer(size);
      b.fill(round * 16 + i);
      if (i % 2 === 0) live.push(b);
      else dropped++;
    }
    await collectInto(dropped);
    expect(isalPoolStats().freeBlocks).toBeGreaterThanOrEqual(1);
  }
  expect(isalPoolStats().hits).toBeGreaterThan(0);
  live.forEach((b, j) => {
    const round = Math.floor(j / 4);
    const i = (j % 4) * 2;
    if (!b.every((x) => x === round * 16 + i)) throw new Error(`live buffer ${j} was overwritten after reuse`);
  });
});

test('the free bound is kept: with a bound of 0 nothing is retained', async () => {
  isal().poolConfigure(0);
  expect(isalPoolStats().freeBytes).toBe(0);
  for (let i = 0; i < 4; i++) allocCodingBuffer(1 << 20).fill(1);
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  expect(isalPoolStats().freeBytes).toBe(0);
  expect(isalPoolStats().maxBytes).toBe(0);
});

test('fragments of blocks still held stay intact while many others are encoded and collected', async () => {
  const codec = createIsalCodec({ kind: 'ec', k: 4, m: 2 });
  const payload = Buffer.alloc(4 << 20, 7);
  const held = await codec.encode(payload);
  const expected = held.map((f) => Buffer.from(f));
  for (let i = 0; i < 20; i++) {
    const other = Buffer.alloc(4 << 20, i);
    await codec.encode(other);
    if (i % 5 === 4) await collectInto(1);
  }
  held.forEach((f, i) => expect(f.equals(expected[i]!)).toBe(true));
});
