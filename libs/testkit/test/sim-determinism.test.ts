import { describe, expect, it } from 'vitest';
import { runSeed } from './sim-config.js';

describe('raft simulation determinism', () => {
  it('replays a seed exactly: same events, same history, same outcome', async () => {
    for (const seed of [3, 8]) {
      const a = await runSeed(seed);
      const b = await runSeed(seed);
      expect(b.stats).toEqual(a.stats);
      expect(JSON.stringify(b.history)).toBe(JSON.stringify(a.history));
      expect(a.stats.events).toBeGreaterThan(500);
      expect(a.stats.opsCompleted).toBeGreaterThan(10);
    }
  });

  it('different seeds give different runs', async () => {
    expect((await runSeed(21)).stats).not.toEqual((await runSeed(23)).stats);
  });
});
