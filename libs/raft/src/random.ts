import type { RandomSource } from './types.js';

/**
 * A small seeded generator (splitmix32) for election timeouts in tests, simulators and
 * benchmarks. Deterministic for a given seed; not cryptographic.
 */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  return {
    int(maxExclusive: number): number {
      if (maxExclusive <= 1) return 0;
      return next() % maxExclusive;
    },
  };
}
