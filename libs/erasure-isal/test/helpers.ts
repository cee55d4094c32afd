/** Deterministic bytes (xorshift) so failures replay without storing data. */
export function bytesOf(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Every subset of {0..n-1} with at most `max` elements. */
export function lossPatterns(n: number, max: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) {
    const lost: number[] = [];
    for (let i = 0; i < n; i++) if (mask & (1 << i)) lost.push(i);
    if (lost.length <= max) out.push(lost);
  }
  return out;
}

export const POLICIES: Array<[number, number]> = [
  [2, 1],
  [4, 2],
  [6, 3],
  [8, 3],
  [10, 4],
];

/** GF(2^8) with ISA-L's polynomial 0x11d, written independently of the addon. */
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    EXP[i + 255] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
}
export function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!;
}
export function gfInv(a: number): number {
  return EXP[255 - LOG[a]!]!;
}

/** ISA-L's gf_gen_cauchy1_matrix: identity on top, then 1 / (i xor j). */
export function cauchyMatrix(k: number, m: number): Uint8Array {
  const g = new Uint8Array((k + m) * k);
  for (let i = 0; i < k + m; i++) for (let j = 0; j < k; j++) g[i * k + j] = i < k ? (i === j ? 1 : 0) : gfInv(i ^ j);
  return g;
}

/** Parity fragment p of the data fragments, byte by byte: the reference the addon must match. */
export function referenceParity(k: number, m: number, data: readonly Uint8Array[], p: number): Buffer {
  const g = cauchyMatrix(k, m);
  const len = data[0]!.length;
  const out = Buffer.alloc(len);
  for (let i = 0; i < k; i++) {
    const c = g[(k + p) * k + i]!;
    const d = data[i]!;
    for (let x = 0; x < len; x++) out[x]! ^= gfMul(c, d[x]!);
  }
  return out;
}
