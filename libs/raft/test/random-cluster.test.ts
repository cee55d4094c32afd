/**
 * Seeded randomised runs of small clusters with reordering, loss, duplication, partitions,
 * crash-restarts and compaction; safety is checked after every step (random-cluster.ts). The
 * same checks must fail with a planted bug switched on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runRandomCluster, type ClusterOptions } from './random-cluster.js';

const STEPS = 3000;
/** Runs per variant; RAFT_RANDOM_RUNS=N runs more (seeds come from fast-check's seeded generator). */
const RUNS = Number(process.env['RAFT_RANDOM_RUNS'] ?? 12);

const variants: { name: string; opts: Omit<ClusterOptions, 'steps'> }[] = [
  { name: '3 nodes', opts: { nodes: 3, preVote: false, checkQuorum: false } },
  { name: '3 nodes, pre-vote and check-quorum', opts: { nodes: 3, preVote: true, checkQuorum: true } },
  { name: '5 nodes', opts: { nodes: 5, preVote: false, checkQuorum: false } },
  { name: '5 nodes, pre-vote, one entry per message', opts: { nodes: 5, preVote: true, checkQuorum: false, maxSizePerMsg: 1 } },
  { name: '3 nodes with membership changes (learners added, promoted, members removed)', opts: { nodes: 3, preVote: false, checkQuorum: false, membership: true } },
  { name: '5 nodes with membership changes, pre-vote and check-quorum', opts: { nodes: 5, preVote: true, checkQuorum: true, membership: true } },
];

describe('random clusters keep the safety properties', () => {
  for (const v of variants) {
    it(v.name, () => {
      let committed = 0;
      let leaders = 0;
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
          const r = runRandomCluster(seed, { ...v.opts, steps: STEPS });
          committed += r.committed;
          leaders += r.leadersElected;
          expect(r.violation).toBeUndefined();
        }),
        { seed: 20261128, numRuns: RUNS },
      );
      // The runs elect leaders and commit entries (a run that never commits proves nothing).
      expect(leaders).toBeGreaterThan(RUNS * 2);
      expect(committed).toBeGreaterThan(RUNS * 3);
    });
  }
});

describe('the same checks catch a planted bug', () => {
  it('countVotesFromOldTerms is caught within the first 60 seeds', () => {
    let caughtAt: number | undefined;
    let message: string | undefined;
    for (let seed = 1; seed <= 60 && caughtAt === undefined; seed++) {
      const r = runRandomCluster(seed, { nodes: 5, preVote: false, checkQuorum: false, steps: STEPS, plantedBugs: { countVotesFromOldTerms: true } });
      if (r.violation !== undefined) {
        caughtAt = seed;
        message = r.violation;
      }
    }
    expect(caughtAt, 'no seed caught the planted bug').toBeDefined();
    expect(message).toMatch(/state machine safety|log matching|election safety|assertion failed/);
    expect(runRandomCluster(caughtAt!, { nodes: 5, preVote: false, checkQuorum: false, steps: STEPS }).violation).toBeUndefined();
  });

  it('commitPreviousTermByCounting is caught within the first 120 seeds', () => {
    let caughtAt: number | undefined;
    let message: string | undefined;
    for (let seed = 1; seed <= 120 && caughtAt === undefined; seed++) {
      const r = runRandomCluster(seed, { nodes: 3, preVote: false, checkQuorum: false, steps: STEPS, plantedBugs: { commitPreviousTermByCounting: true } });
      if (r.violation !== undefined) {
        caughtAt = seed;
        message = r.violation;
      }
    }
    expect(caughtAt, 'no seed caught the planted bug').toBeDefined();
    expect(message).toMatch(/state machine safety|log matching|election safety|assertion failed/);
    // The same seed is clean without the bug.
    expect(runRandomCluster(caughtAt!, { nodes: 3, preVote: false, checkQuorum: false, steps: STEPS }).violation).toBeUndefined();
  });
});
