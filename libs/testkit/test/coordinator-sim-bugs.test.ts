/**
 * The coordinator simulation catches broken coordinators within its fixed seeds:
 * - stale reads: lookups served from a node's local block map without ReadIndex (a follower, or a
 *   deposed leader, answers from behind);
 * - retries applied twice: every attempt of a request carries a fresh request id, so the block map
 *   cannot de-duplicate it;
 * - a non-atomic store: a crash loses an apply batch's effects but keeps its applied index, so the
 *   restarted replica diverges (caught by the state digest comparison, not by the clients).
 * And it replays a seed exactly.
 */
import { describe, expect, it } from 'vitest';
import { COORDINATOR_FIXED_SEEDS, coordinatorOptions, runCoordinatorSeed } from './coordinator/sim-config.js';
import { blockMapService } from './coordinator/block-map-service.js';

describe('coordinator simulation catches planted coordinator bugs', () => {
  it('stale reads (lookups from local state, no ReadIndex) fail the linearizability check', async () => {
    let caughtAt = 0;
    for (let seed = 1; seed <= COORDINATOR_FIXED_SEEDS && caughtAt === 0; seed++) {
      const r = await runCoordinatorSeed(seed, { localReads: true });
      if (!r.ok && r.property === 'linearizability') {
        caughtAt = seed;
        console.log(`planted stale reads: caught at seed ${seed}\n${r.failure!.split('\n').slice(0, 12).join('\n')}`);
      }
    }
    expect(caughtAt, `stale reads were not caught within ${COORDINATOR_FIXED_SEEDS} seeds`).toBeGreaterThan(0);
  }, 600_000);

  it('retries without request ids (applied twice) fail the linearizability check', async () => {
    let caughtAt = 0;
    for (let seed = 1; seed <= COORDINATOR_FIXED_SEEDS && caughtAt === 0; seed++) {
      const service = blockMapService({ durable: seed % 2 === 0, keys: 4, batchMax: 3, plantedNoDedup: true });
      const r = await runCoordinatorSeed(seed, { service });
      if (!r.ok && r.property === 'linearizability') {
        caughtAt = seed;
        console.log(`planted retries applied twice: caught at seed ${seed}\n${r.failure!.split('\n').slice(0, 12).join('\n')}`);
      }
    }
    expect(caughtAt, `double-applied retries were not caught within ${COORDINATOR_FIXED_SEEDS} seeds`).toBeGreaterThan(0);
  }, 600_000);

  it('a store whose apply batches tear on a crash (replicas diverge) fails the state digest check', async () => {
    let caughtAt = 0;
    for (let seed = 2; seed <= COORDINATOR_FIXED_SEEDS && caughtAt === 0; seed += 2) {
      const service = blockMapService({ durable: true, keys: 4, batchMax: 3, plantedTornApply: true });
      const r = await runCoordinatorSeed(seed, { service });
      if (!r.ok && (r.property === 'state digest' || r.property === 'convergence')) {
        caughtAt = seed;
        console.log(`planted torn apply: caught at seed ${seed} by ${r.property} (${r.counters.torn} torn batches)\n${r.failure!.split('\n').slice(0, 3).join('\n')}`);
      }
    }
    expect(caughtAt, `torn apply batches were not caught within ${COORDINATOR_FIXED_SEEDS} seeds`).toBeGreaterThan(0);
  }, 600_000);
});

describe('coordinator simulation determinism', () => {
  it('replays a seed exactly: same events, same history, same digests', async () => {
    for (const seed of [2, 3]) {
      const a = await runCoordinatorSeed(seed);
      const b = await runCoordinatorSeed(seed);
      expect(b.stats).toEqual(a.stats);
      expect(JSON.stringify(b.history)).toBe(JSON.stringify(a.history));
      expect(b.counters).toEqual(a.counters);
      expect(a.stats.opsCompleted).toBeGreaterThan(10);
    }
    expect(coordinatorOptions(1).service.name).toBe('block-map(volatile)');
    expect(coordinatorOptions(2).service.name).toBe('block-map(durable)');
  }, 120_000);
});
