/**
 * Time to first token with a real engine: llama.cpp (node-llama-cpp 3.21.1, CPU) on a generated
 * ~300 MB random-weight Llama (8 layers, 16 heads, 4 KV heads, head dim 64, f16; 8 KiB of KV per
 * token). Per N cached tokens (prompt = N + 1 tokens): TTFT by recompute, by restore from
 * llama.cpp's own state file on local disk (the ceiling), from the gateway's DRAM tier, and from
 * the storage nodes through a restarted gateway (cold, ec:4+2). Then the measured cold restore
 * bandwidth applied to Llama-3.1-70B (320 KiB per token) at 105K tokens, beside WEKA's 0.58 s.
 *
 * The engine lives in examples/llama-offload (its own package, ~0.7 GB installed): installed here
 * on first use with `npm ci --prefix examples/llama-offload`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Metric, quick, round, withBaseline } from './lib/harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const example = join(here, '..', 'examples', 'llama-offload');

/** The shape of examples/llama-offload/src/ttft-bench.ts's result (kept here: the example is not a workspace). */
interface TtftPoint {
  tokens: number;
  recomputeMs: number;
  localFileMs: number;
  warehouseDramMs: number;
  warehouseDramFetchMs: number;
  warehouseColdMs: number;
  stateFiles: { dram: string; dramFetch: string; cold: string };
  stateFileBytes: number;
  warehouseBytes: number;
  coldTimings: { lookupMs: number; fetchMs: number; loadMs: number; evaluateMs: number };
  dramTimings: { lookupMs: number; fetchMs: number; loadMs: number; evaluateMs: number };
  dramFetchTimings: { lookupMs: number; fetchMs: number; loadMs: number; evaluateMs: number };
  rawHttpMs: number;
  identical: boolean;
}
interface TtftBenchModule {
  runTtftBench(o: { tokens: readonly number[]; blockTokens?: number; threads?: number; log?: (s: string) => void }): Promise<{ modelBytes: number; kvBytesPerToken: number; blockTokens: number; threads: number; points: TtftPoint[] }>;
}

const LLAMA70B_KV_BYTES_PER_TOKEN = 320 * 1024;
const WEKA_TOKENS = 105_000;
const WEKA_TTFT_MS = 580;

export default async function ttft(): Promise<Metric[]> {
  if (!existsSync(join(example, 'node_modules', 'node-llama-cpp'))) {
    console.log('installing examples/llama-offload (node-llama-cpp 3.21.1 with its prebuilt binaries)...');
    execFileSync('npm', ['ci', '--prefix', example, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  }
  const mod = (await import(pathToFileURL(join(example, 'src', 'ttft-bench.ts')).href)) as TtftBenchModule;
  const tokens = quick ? [1024, 2048] : [1024, 4096, 8192];
  const r = await mod.runTtftBench({ tokens, blockTokens: 256, threads: 2, log: (s) => console.log(s) });

  const out: Metric[] = [];
  console.log(`\nmodel ${(r.modelBytes / 1e6).toFixed(0)} MB, KV ${r.kvBytesPerToken} B/token, blocks of ${r.blockTokens} tokens, ${r.threads} threads; prompt = N cached tokens + 1 new`);
  console.log('N      recompute   local file   DRAM (deliver)   DRAM (fetch)   cold   KV bytes   recompute/DRAM   recompute/cold   local/DRAM   local/cold   identical');
  for (const p of r.points) {
    console.log(
      `${String(p.tokens).padEnd(6)} ${(p.recomputeMs / 1000).toFixed(2).padStart(8)} s ${p.localFileMs.toFixed(0).padStart(9)} ms ${p.warehouseDramMs.toFixed(0).padStart(13)} ms ${p.warehouseDramFetchMs.toFixed(0).padStart(11)} ms ${p.warehouseColdMs.toFixed(0).padStart(6)} ms ${(p.warehouseBytes / 1e6).toFixed(1).padStart(6)} MB ${(p.recomputeMs / p.warehouseDramMs).toFixed(1).padStart(13)}x ${(p.recomputeMs / p.warehouseColdMs).toFixed(1).padStart(13)}x ${(p.localFileMs / p.warehouseDramMs).toFixed(2).padStart(10)}x ${(p.localFileMs / p.warehouseColdMs).toFixed(2).padStart(10)}x   ${p.identical ? 'yes' : 'NO'}`,
    );
    const n = p.tokens;
    out.push({ metric: `ttft.recompute.${n}`, value: round(p.recomputeMs), unit: 'ms' });
    out.push(withBaseline({ metric: `ttft.restore.local_file.${n}`, value: round(p.localFileMs), unit: 'ms' }, `ttft.recompute.${n}`, p.recomputeMs));
    out.push(withBaseline({ metric: `ttft.restore.warehouse_dram.${n}`, value: round(p.warehouseDramMs), unit: 'ms' }, `ttft.restore.local_file.${n}`, p.localFileMs));
    out.push(withBaseline({ metric: `ttft.restore.warehouse_dram_fetched.${n}`, value: round(p.warehouseDramFetchMs), unit: 'ms' }, `ttft.restore.local_file.${n}`, p.localFileMs));
    out.push(withBaseline({ metric: `ttft.speedup.warehouse_dram_vs_recompute.${n}`, value: round(p.warehouseDramMs), unit: 'ms' }, `ttft.recompute.${n}`, p.recomputeMs));
    out.push(withBaseline({ metric: `ttft.restore.warehouse_cold.${n}`, value: round(p.warehouseColdMs), unit: 'ms' }, `ttft.restore.local_file.${n}`, p.localFileMs));
    out.push(withBaseline({ metric: `ttft.speedup.warehouse_cold_vs_recompute.${n}`, value: round(p.warehouseColdMs), unit: 'ms' }, `ttft.recompute.${n}`, p.recomputeMs));
    out.push({ metric: `bytes.state_file.${n}`, value: p.stateFileBytes, unit: 'bytes' });
    out.push({ metric: `bytes.warehouse_restore.${n}`, value: p.warehouseBytes, unit: 'bytes' });
    out.push(withBaseline({ metric: `restore.warehouse_cold.fetch.${n}`, value: round(p.coldTimings.fetchMs), unit: 'ms' }, `raw_http_get.${n}`, p.rawHttpMs));
    out.push(withBaseline({ metric: `restore.warehouse_dram.fetch.${n}`, value: round(p.dramTimings.fetchMs), unit: 'ms' }, `raw_http_get.${n}`, p.rawHttpMs));
    out.push({ metric: `restore.identical_to_recompute.${n}`, value: p.identical ? 1 : 0, unit: 'ratio' });
  }
  const last = r.points[r.points.length - 1]!;
  // Restore bandwidth: KV bytes over lookup + fetch + verify + load (the new token's evaluation,
  // which does not grow with the prefix, left out).
  const restoreMs = (t: TtftPoint['coldTimings']): number => t.lookupMs + t.fetchMs + t.loadMs;
  const coldGBps = last.warehouseBytes / (restoreMs(last.coldTimings) * 1e6);
  const dramGBps = last.warehouseBytes / (restoreMs(last.dramTimings) * 1e6);
  const bytes70b = LLAMA70B_KV_BYTES_PER_TOKEN * WEKA_TOKENS;
  const extrapolatedMs = bytes70b / (coldGBps * 1e6);
  out.push({ metric: `restore.warehouse_cold.bandwidth.${last.tokens}`, value: round(coldGBps), unit: 'GB/s' });
  out.push({ metric: `restore.warehouse_dram.bandwidth.${last.tokens}`, value: round(dramGBps), unit: 'GB/s' });
  out.push(withBaseline({ metric: 'ttft.extrapolated.llama-3.1-70b.105k.warehouse_cold', value: round(extrapolatedMs), unit: 'ms' }, 'weka.amg.105k', WEKA_TTFT_MS));
  console.log(
    `\nrestore bandwidth (lookup + fetch + verify + load) at ${last.tokens} tokens: cold ${coldGBps.toFixed(3)} GB/s, DRAM tier ${dramGBps.toFixed(3)} GB/s; Llama-3.1-70B at 105K tokens = ${(bytes70b / 1e9).toFixed(1)} GB of KV -> ${(extrapolatedMs / 1000).toFixed(1)} s at that bandwidth, beside WEKA's ${WEKA_TTFT_MS / 1000} s`,
  );
  console.log(
    `targets at ${last.tokens}: local file / warehouse = DRAM tier (${last.stateFiles.dram}) ${(last.localFileMs / last.warehouseDramMs).toFixed(2)}x, DRAM tier fetched (${last.stateFiles.dramFetch}) ${(last.localFileMs / last.warehouseDramFetchMs).toFixed(2)}x, cold (${last.stateFiles.cold}) ${(last.localFileMs / last.warehouseColdMs).toFixed(2)}x (target >= 0.8); recompute / warehouse = DRAM ${(last.recomputeMs / last.warehouseDramMs).toFixed(1)}x, cold ${(last.recomputeMs / last.warehouseColdMs).toFixed(1)}x (target >= 41)`,
  );
  return out;
}
