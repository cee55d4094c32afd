/** Deterministic test bytes: cheap to make at 64 MiB, and misplaced or reordered blocks show. */

const BLOCK = 4096;

/** mulberry32: a small seeded PRNG so every failure replays. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `buf` with a seeded block repeated, each 4 KiB stamped with its index and the seed. */
export function fillPattern(buf: Uint8Array, seed: number): Uint8Array {
  const rnd = seededRandom(seed);
  const block = Buffer.allocUnsafe(BLOCK);
  for (let i = 0; i < BLOCK; i++) block[i] = Math.floor(rnd() * 256);
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  for (let off = 0, n = 0; off < view.length; off += BLOCK, n++) {
    const k = Math.min(BLOCK, view.length - off);
    block.copy(view, off, 0, k);
    if (k >= 8) {
      view.writeUInt32LE(n, off);
      view.writeUInt32LE(seed >>> 0, off + 4);
    }
  }
  return buf;
}

export function pattern(length: number, seed: number): Buffer {
  return fillPattern(Buffer.allocUnsafe(length), seed) as Buffer;
}

/** True when `buf` holds exactly `pattern(buf.length, seed)`. */
export function hasPattern(buf: Uint8Array, seed: number): boolean {
  const expected = pattern(buf.length, seed);
  return expected.equals(buf);
}
