/**
 * The coordinator simulation: 3 coordinators, each the real @tw/raft RawNode with the real
 * @tw/block-map BlockMap (memory store) as its state machine, an administrator that sets the
 * cluster up (init-cluster, storage nodes, namespace), then clients doing commit-blocks (single
 * keys and batches), lookupPrefix (ReadIndex or through the log) and delete-blocks with request ids
 * and retries, under the KV simulation's faults. Checked: raft safety after every event, equal
 * block map digests for equal applied indexes, liveness after healing, convergence, and the
 * linearizability of the block map history (per-key model, block-map-model.ts).
 *
 * SIM_SEEDS=N runs N seeds, SIM_SEED=S replays one (prints its stats).
 */
import { describe, expect, it } from 'vitest';
import { COORDINATOR_FIXED_SEEDS, runCoordinatorSeed } from './coordinator/sim-config.js';

const CHUNK = 25;
const replay = process.env['SIM_SEED'];
const env = process.env['SIM_SEEDS'];
const total = replay !== undefined ? 0 : env !== undefined && env !== '' ? Number(env) : COORDINATOR_FIXED_SEEDS;
if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`SIM_SEEDS must be a positive integer, got ${env}`);
const chunks: [number, number][] = [];
for (let lo = 1; lo <= total; lo += CHUNK) chunks.push([lo, Math.min(total, lo + CHUNK - 1)]);

if (replay === undefined) {
  describe('coordinator simulation (real block map), fixed seeds', () => {
    it.each(chunks)('seeds %i..%i', async (lo, hi) => {
      const failures: string[] = [];
      let unknown = 0;
      const sum = { ops: 0, digests: 0, snapshotsRestored: 0, reopened: 0, reopenedBehindSnapshot: 0, duplicates: 0, batches: 0 };
      const errors: string[] = [];
      for (let seed = lo; seed <= hi; seed++) {
        const r = await runCoordinatorSeed(seed);
        if (!r.ok) failures.push(r.failure!);
        else if (r.stats.linearizability === 'unknown') unknown++;
        sum.ops += r.stats.opsCompleted;
        sum.digests += r.stats.digestsCompared;
        sum.snapshotsRestored += r.counters.snapshotsRestored;
        sum.reopened += r.counters.reopened;
        sum.reopenedBehindSnapshot += r.counters.reopenedBehindSnapshot;
        sum.duplicates += r.counters.duplicates;
        for (const [code, n] of r.counters.errors) errors.push(`seed ${seed}: ${n} x ${code}`);
        sum.batches += r.history.filter((op) => op.input.op !== 'setup' && op.output !== undefined && (op.input.op === 'commit' ? op.input.blocks.length : op.input.keys.length) > 1).length;
      }
      console.log(`coordinator seeds ${lo}..${hi}: ${JSON.stringify({ ...sum, linearizabilityUnknown: unknown })}`);
      expect(failures.length, failures.join('\n\n')).toBe(0);
      // No workload command may fail, not even a retry nobody waits for any more (e.g. REQUEST_EXPIRED).
      expect(errors, errors.join('\n')).toEqual([]);
      expect(unknown).toBeLessThanOrEqual(Math.ceil((hi - lo + 1) / 10));
      // The runs must exercise what they claim to: completed operations, batches, digest
      // comparisons, snapshot restores (volatile restarts) and store reopens (durable restarts).
      expect(sum.ops).toBeGreaterThan(20 * (hi - lo + 1));
      expect(sum.batches).toBeGreaterThan(0);
      expect(sum.digests).toBeGreaterThan(0);
      expect(sum.snapshotsRestored).toBeGreaterThan(0);
      expect(sum.reopened).toBeGreaterThan(0);
      expect(sum.duplicates).toBeGreaterThan(0);
    }, 600_000);
  });
} else {
  describe('coordinator simulation, replay', () => {
    it(`seed ${replay}`, async () => {
      const r = await runCoordinatorSeed(Number(replay));
      console.log(JSON.stringify({ ...r.stats, counters: r.counters }));
      expect(r.ok, r.failure).toBe(true);
    });
  });
}
