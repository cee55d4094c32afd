/**
 * Crash-test child: `crash-child.ts DIR SEED FROM TO` opens the LevelDB raft log in DIR and runs
 * plan steps FROM..TO, printing `ok K` once step K is durable. The parent SIGKILLs it at a
 * seeded moment.
 */
import { LevelRaftStorage } from '../src/index.js';
import { planStep } from './crash-plan.js';

const [dir, seedArg, fromArg, toArg] = process.argv.slice(2);
const seed = Number(seedArg);
const from = Number(fromArg);
const to = Number(toArg);
const storage = await LevelRaftStorage.open(dir!, { sync: true });
for (let k = from; k <= to; k++) {
  const op = planStep(seed, k, storage);
  if (op.kind === 'persist') await storage.persist(op);
  else if (op.kind === 'compact') await storage.compact(op.index);
  else await storage.createSnapshot(op.index, undefined, op.data);
  process.stdout.write(`ok ${k}\n`);
}
await storage.close();
process.stdout.write('done\n');
