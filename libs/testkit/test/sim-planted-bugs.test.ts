/**
 * Checks that the checkers work: with a known Raft bug planted (RaftConfig.plantedBugs), the
 * simulator must fail within the fixed seed list. Prints after how many seeds each was caught.
 */
import { describe, expect, it } from 'vitest';
import { FIXED_SEEDS, runSeed } from './sim-config.js';

const ANY_SAFETY = ['vote quorum', 'commit rule', 'election safety', 'leader completeness', 'state machine safety', 'linearizability', 'log matching', 'exception'];

const BUGS = [
  { bug: 'countVotesFromOldTerms', properties: ['vote quorum', 'election safety', 'leader completeness', 'state machine safety', 'linearizability', 'log matching'] },
  { bug: 'commitPreviousTermByCounting', properties: ['commit rule', 'leader completeness', 'state machine safety', 'linearizability', 'log matching'] },
] as const;

describe('planted raft bugs are caught by the simulator', () => {
  it.each(BUGS)('$bug', async ({ bug, properties }) => {
    let caughtAt = 0;
    let property = '';
    for (let seed = 1; seed <= FIXED_SEEDS; seed++) {
      const r = await runSeed(seed, { raft: { plantedBugs: { [bug]: true } } });
      if (!r.ok && !(properties as readonly string[]).includes(r.property ?? '')) {
        // Another failure (e.g. a liveness bug of the library itself): not this bug's signature.
        console.log(`planted bug ${bug}: seed ${seed} failed otherwise (${r.property})`);
        continue;
      }
      if (!r.ok) {
        caughtAt = seed;
        property = r.property ?? '';
        console.log(`planted bug ${bug}: caught at seed ${seed} (after ${seed} seeds) by ${property}\n${r.failure!.split('\n').slice(0, 2).join('\n')}`);
        break;
      }
    }
    expect(caughtAt, `${bug} was not caught within ${FIXED_SEEDS} seeds`).toBeGreaterThan(0);
    expect(properties as readonly string[]).toContain(property);
  }, 600_000);

  it('a service that answers reads from local state (stale reads) fails the linearizability check', async () => {
    let caughtAt = 0;
    for (let seed = 1; seed <= FIXED_SEEDS && caughtAt === 0; seed++) {
      const r = await runSeed(seed, { localReads: true });
      if (!r.ok && r.property === 'linearizability') {
        caughtAt = seed;
        console.log(`planted stale reads: caught at seed ${seed}\n${r.failure!.split('\n').slice(0, 8).join('\n')}`);
      }
    }
    expect(caughtAt, `stale reads were not caught within ${FIXED_SEEDS} seeds`).toBeGreaterThan(0);
  }, 600_000);

  it('a harness that sends before its writes are durable (crashes then lose acknowledged votes and entries)', async () => {
    let caughtAt = 0;
    for (let seed = 1; seed <= FIXED_SEEDS && caughtAt === 0; seed++) {
      const r = await runSeed(seed, { sendBeforePersist: true });
      if (!r.ok && ANY_SAFETY.includes(r.property ?? '')) {
        caughtAt = seed;
        console.log(`planted harness bug sendBeforePersist: caught at seed ${seed} by ${r.property}\n${r.failure!.split('\n').slice(0, 2).join('\n')}`);
      }
    }
    expect(caughtAt, `sendBeforePersist was not caught within ${FIXED_SEEDS} seeds`).toBeGreaterThan(0);
  }, 600_000);
});
