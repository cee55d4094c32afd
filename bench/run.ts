/**
 * `npm run bench` lists the benchmarks; `npm run bench -- <name>` runs one. A benchmark is a file
 * `bench/<name>.bench.ts` whose default export returns its metrics (see lib/harness.ts).
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { report, type Metric } from './lib/harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

const name = process.argv[2];
if (name === undefined || name === '--help' || name === '-h') {
  console.log('usage: npm run bench -- <name>   (BENCH_QUICK=1 for a short run)\n\nbenchmarks:');
  for (const n of names) console.log(`  ${n}`);
  process.exit(0);
}
if (!names.includes(name)) {
  console.error(`unknown benchmark "${name}"; known: ${names.join(', ')}`);
  process.exit(2);
}
const mod = (await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)) as { default: () => Promise<Metric[]> };
const results = await mod.default();
report(name, results);
