/** The fixed setup of the coordinator simulation (3 coordinators running the real block map). */
import { runSimulation, type SimOptions, type SimResult } from '../../src/index.js';
import type { BmKeyState, BmRequest, BmResponse } from './block-map-model.js';
import { blockMapService, type BlockMapCounters } from './block-map-service.js';

/** Seeds in the fixed list (`SIM_SEEDS=N` runs N instead). */
export const COORDINATOR_FIXED_SEEDS = 100;

export type CoordinatorSimOptions = SimOptions<BmRequest, BmResponse, BmKeyState>;

/** Even seeds keep the block map's store across crashes (durable), odd seeds rebuild it from raft (volatile). */
export function coordinatorOptions(seed: number, extra: Partial<CoordinatorSimOptions> = {}): CoordinatorSimOptions {
  return {
    seed,
    nodeCount: 3,
    clientCount: 6,
    service: blockMapService({ durable: seed % 2 === 0, keys: 4, batchMax: 3 }),
    faultPhaseTime: 40_000,
    livenessBound: 20_000,
    digestEvery: 10,
    ...extra,
  };
}

export async function runCoordinatorSeed(seed: number, extra: Partial<CoordinatorSimOptions> = {}): Promise<SimResult<BmRequest, BmResponse> & { counters: BlockMapCounters }> {
  const options = coordinatorOptions(seed, extra);
  const r = await runSimulation(options);
  return { ...r, counters: (options.service as unknown as { counters: BlockMapCounters }).counters };
}
