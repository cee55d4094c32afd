/**
 * Benchmark harness (BENCH.md): every benchmark returns metrics; the runner prints a human
 * table, then the JSON object as the last line of stdout, and writes bench/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Unit = 'GB/s' | 'ops/s' | 'ms' | 'us' | 'bytes' | 'ratio';

export interface Metric {
  metric: string;
  value: number;
  unit: Unit;
  baseline?: string;
  baseline_value?: number;
  ratio?: number;
}

/** BENCH_QUICK=1: a run under 60 s with fewer iterations. */
export const quick = process.env['BENCH_QUICK'] === '1';

/** Picks the full or the quick figure. */
export function scale(full: number, quickValue: number): number {
  return quick ? quickValue : full;
}

/** Attaches a baseline measured in the same run. Throughput: ratio = value / baseline; latency
 * (ms, us): ratio = baseline / value, so that a ratio above 1 is always better for us. */
export function withBaseline(m: Metric, baseline: string, baselineValue: number): Metric {
  const lowerIsBetter = m.unit === 'ms' || m.unit === 'us';
  const ratio = lowerIsBetter ? baselineValue / m.value : m.value / baselineValue;
  return { ...m, baseline, baseline_value: round(baselineValue), ratio: round(ratio) };
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const p = 10 ** Math.max(0, digits - Math.floor(Math.log10(Math.abs(x) || 1)) - 1);
  return Math.round(x * p) / p;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

/**
 * Runs `fn` (which processes `bytesPerCall` bytes) for at least `minMs` after `warmupCalls`, `runs`
 * times, and returns the median throughput in GB/s (1e9 bytes per second).
 */
export async function throughputGBps(
  bytesPerCall: number,
  fn: () => unknown | Promise<unknown>,
  opts: { runs?: number; minMs?: number; warmupCalls?: number } = {},
): Promise<number> {
  const runs = opts.runs ?? scale(5, 3);
  const minMs = opts.minMs ?? scale(300, 100);
  for (let i = 0; i < (opts.warmupCalls ?? 3); i++) await fn();
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let calls = 0;
    const t0 = process.hrtime.bigint();
    let elapsedNs = 0n;
    do {
      await fn();
      calls++;
      elapsedNs = process.hrtime.bigint() - t0;
    } while (Number(elapsedNs) / 1e6 < minMs);
    rates.push((bytesPerCall * calls) / Number(elapsedNs));
  }
  return median(rates);
}

/** memcpy (Buffer.copy) of `bytes`: the ceiling for any in-memory path. */
export async function memcpyGBps(bytes: number): Promise<number> {
  const src = Buffer.alloc(bytes, 7);
  const dst = Buffer.allocUnsafe(bytes);
  return throughputGBps(bytes, () => src.copy(dst));
}

export function machine(): { cpus: number; node: string } {
  return { cpus: cpus().length, node: process.version };
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** Prints the human table, then the JSON line last, and writes bench/results/<name>.json. */
export function report(name: string, results: Metric[]): void {
  const rows = results.map((r) => [
    r.metric,
    `${r.value} ${r.unit}`,
    r.baseline === undefined ? '' : `${r.baseline} = ${r.baseline_value} ${r.unit}`,
    r.ratio === undefined ? '' : `x${r.ratio}`,
  ]);
  const header = ['metric', 'value', 'baseline (same run)', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(`\n${name}${quick ? ' (BENCH_QUICK)' : ''}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
  const json = JSON.stringify({ bench: name, machine: machine(), quick, results });
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${name}.json`), json + '\n');
  console.log(json);
}
