/** The fixed simulator setup of the test suite (shared by the seed runs and the planted-bug tests). */
import { kvService, runSimulation, type SimOptions, type SimResult } from '../src/index.js';
import type { KvInput, KvKeyState, KvOutput } from '../src/index.js';

/** Seeds in the fixed list (`SIM_SEEDS=N` runs N instead). */
export const FIXED_SEEDS = 500;

export function seedCount(): number {
  const env = process.env['SIM_SEEDS'];
  if (env === undefined || env === '') return FIXED_SEEDS;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`SIM_SEEDS must be a positive integer, got ${env}`);
  return n;
}

export function simOptions(seed: number, extra: Partial<SimOptions<KvInput, KvOutput, KvKeyState>> = {}): SimOptions<KvInput, KvOutput, KvKeyState> {
  return {
    seed,
    nodeCount: seed % 2 === 1 ? 3 : 5,
    clientCount: 5,
    service: kvService({ keys: 3 }),
    faultPhaseTime: 80_000,
    livenessBound: 20_000,
    ...extra,
  };
}

export function runSeed(seed: number, extra: Partial<SimOptions<KvInput, KvOutput, KvKeyState>> = {}): Promise<SimResult<KvInput, KvOutput>> {
  return runSimulation(simOptions(seed, extra));
}
