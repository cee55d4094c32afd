import { assert } from '@tw/errors';
import type { RandomSource } from '@tw/raft';

/**
 * A small seeded PRNG (mulberry32 over a splitmix-scrambled seed). One instance per purpose, all
 * derived from the run's seed, so a seed replays a run exactly. Not cryptographic.
 */
export class Prng implements RandomSource {
  private state: number;

  constructor(seed: number, stream = 0) {
    this.state = mix32(mix32(seed >>> 0) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    if (maxExclusive <= 1) return 0;
    return Math.floor(this.float() * maxExclusive);
  }

  /** Uniform integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    assert(xs.length > 0, 'pick from an empty list');
    return xs[this.int(xs.length)]!;
  }

  /** An independent generator for a sub-purpose (e.g. one node's election timeouts). */
  fork(stream: number): Prng {
    return new Prng(this.next(), stream);
  }
}

function mix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
