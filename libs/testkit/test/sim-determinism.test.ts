import { describe, expect, it } from 'vitest';
import { runSeed } from './sim-config.js';

describe('raft simulation determinism', () => {
  it('replays a seed exactly: same events, same history, same outcome', () => {
    for (const seed of [3, 8]) {
      const a = runSeed(seed);
      const b = runSeed(seed);
      expect(b.stats).toEqual(a.stats);
      expect(JSON.stringify(b.history)).toBe(JSON.stringify(a.history));
      expect(a.stats.events).toBeGreaterThan(500);
      expect(a.stats.opsCompleted).toBeGreaterThan(10);
    }
  });

  it('different seeds give different runs', () => {
    expect(runSeed(21).stats).not.toEqual(runSeed(23).stats);
  });
});
