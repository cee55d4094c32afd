import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Token } from 'node-llama-cpp';
import type { ManagedProcess } from '@tw/twctl';
import { restartGatewayWarm, startWarehouse } from './cluster.js';
import { evaluateForNext, freshSequence, loadEngine, loadModel } from './engine.js';
import { modelFingerprint } from './fingerprint.js';
import { ensureLlamaGguf } from './gguf/generate-llama.js';
import { DEMO_DIMS, kvBytesPerToken } from './gguf/llama-spec.js';
import { KvOffload, type RestoreResult } from './kv-offload.js';
import { sameProbabilities, seededPrompt } from './prompt.js';
import { NativeWarehouse, type Warehouse } from './warehouse-client.js';

export interface TtftPoint {
  /** Cached tokens; the prompt is these plus one new token. */
  readonly tokens: number;
  readonly recomputeMs: number;
  readonly localFileMs: number;
  /** From the gateway's DRAM tier, written into the state file by the gateway (DELIVER). */
  readonly warehouseDramMs: number;
  /** The same, with the blocks fetched over the native protocol and written here (no DELIVER). */
  readonly warehouseDramFetchMs: number;
  readonly warehouseColdMs: number;
  /** How each restore staged the state file ('delivered', 'streamed', ...). */
  readonly stateFiles: { readonly dram: string; readonly dramFetch: string; readonly cold: string };
  /** Bytes of llama.cpp's own state file for the N tokens (the local-file path reads these). */
  readonly stateFileBytes: number;
  /** Bytes the warehouse restores fetched (block framing included). */
  readonly warehouseBytes: number;
  readonly coldTimings: RestoreResult['timings'];
  readonly dramTimings: RestoreResult['timings'];
  readonly dramFetchTimings: RestoreResult['timings'];
  /** The same bytes, in blocks of the same sizes, GET from a bare node:http server in another process (8 in flight): the HTTP ceiling. */
  readonly rawHttpMs: number;
  readonly identical: boolean;
}

export interface TtftBenchResult {
  readonly modelBytes: number;
  readonly kvBytesPerToken: number;
  readonly blockTokens: number;
  readonly threads: number;
  readonly points: TtftPoint[];
}

const here = dirname(fileURLToPath(import.meta.url));

/** Runs per warm path (local file, DRAM tier): the best is reported (the one-token evaluation alone varies 25-700 ms on a shared machine). */
const RUNS = 3;
/** Cold runs, each through a freshly restarted gateway. */
const COLD_RUNS = 2;

/** A bare node:http server in a child process answering every GET with `bytes` bytes. */
const RAW_SERVER = `
const http = require('node:http');
const body = Buffer.alloc(Number(process.argv[1]), 7);
const s = http.createServer((req, res) => { res.writeHead(200, { 'content-length': body.length }); res.end(body); });
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
`;

/** Time to GET `blocks` bodies of `bytes` from RAW_SERVER, `inflight` at once (best of 3). */
async function rawHttpGetMs(blocks: number, bytes: number, inflight: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', RAW_SERVER, String(bytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', () => reject(new Error('raw HTTP server exited')));
    });
    const best: number[] = [];
    for (let run = 0; run < 3; run++) {
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: Math.min(inflight, blocks) }, async () => {
          while (next < blocks) {
            next++;
            const r = await fetch(`http://127.0.0.1:${port}/b`);
            Buffer.from(await r.arrayBuffer());
          }
        }),
      );
      best.push(performance.now() - t0);
    }
    return Math.min(...best);
  } finally {
    child.kill('SIGTERM');
  }
}

/**
 * Per N: TTFT of an (N+1)-token prompt whose first N tokens are (a) recomputed, (b) loaded from
 * llama.cpp's own state file on local disk (the ceiling), (c) restored through the gateway from
 * its DRAM tier, (d) restored through a restarted gateway (empty DRAM tier and record cache: every
 * fragment from the storage nodes, ec:4+2; warmed up by one read of an unrelated block). Every restore must give the recompute's
 * probabilities bit for bit, or the point is marked not identical.
 */
export async function runTtftBench(o: { tokens: readonly number[]; blockTokens?: number; threads?: number; coordinators?: number; log?: (s: string) => void }): Promise<TtftBenchResult> {
  const B = o.blockTokens ?? 256;
  const threads = o.threads ?? 2;
  const log = o.log ?? (() => undefined);
  const modelDir = join(here, '..', '.models');
  mkdirSync(modelDir, { recursive: true });
  const g = ensureLlamaGguf(join(modelDir, 'random-llama-8L-1024d.gguf'), DEMO_DIMS, 1);
  const fingerprint = await modelFingerprint(g.path);
  const work = mkdtempSync(join(tmpdir(), 'tw-bench-ttft-'));
  const cleanup = [work];
  const llama = await loadEngine({ threads });
  let cluster: Awaited<ReturnType<typeof startWarehouse>> | undefined;
  let gw2: ManagedProcess | undefined;
  let warehouse: NativeWarehouse | undefined;
  try {
    const model = await loadModel(llama, g.path);
    const maxN = Math.max(...o.tokens);
    // DRAM tier big enough for every point's blocks: the DRAM measurement is a DRAM hit.
    cluster = await startWarehouse({ dataDir: join(work, 'cluster'), coordinators: o.coordinators ?? 1, storageNodes: 6, redundancy: 'ec:4+2', gatewayDramTierBytes: Math.max(64 << 20, 2 * kvBytesPerToken(DEMO_DIMS) * maxN + (64 << 20)) });
    // The native protocol (@tw/client): the gateway's fast path for bytes (the HTTP API works too).
    warehouse = await NativeWarehouse.connect({ address: cluster.gatewayNative! });
    // Restores stage llama.cpp's state file in RAM (tmpfs) where there is one.
    const staging = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/tw-bench-ttft-') : work;
    cleanup.push(staging);
    const kv = new KvOffload({ warehouse, fingerprint, blockTokens: B, tmpDir: staging, onFallback: (r) => log(`  fallback: ${r}`) });
    // The same client without DELIVER: blocks travel over the socket and are written here.
    const w = warehouse;
    const fetchOnly: Warehouse = { put: (k, v, x) => w.put(k, v, x), get: (k, x) => w.get(k, x), delete: (k, x) => w.delete(k, x), lookupPrefix: (k, x) => w.lookupPrefix(k, x) };
    const kvFetch = new KvOffload({ warehouse: fetchOnly, fingerprint, blockTokens: B, tmpDir: staging, onFallback: (r) => log(`  fallback (fetch): ${r}`) });
    const points: TtftPoint[] = [];
    for (const N of o.tokens) {
      if (N % B !== 0) throw new RangeError(`tokens ${N} must be a multiple of the block size ${B}`);
      const prompt = seededPrompt(N + 1, DEMO_DIMS.vocabSize, 1000 + N);
      const ctx = { contextSize: N + 64, threads };
      const localFile = join(work, `state-${N}.bin`);

      // (a) recompute: the N tokens, then the new one (the state file is saved in between, untimed).
      const a = await freshSequence(model, ctx);
      let t = performance.now();
      await a.sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, N));
      let recomputeMs = performance.now() - t;
      await a.sequence.saveStateToFile(localFile);
      t = performance.now();
      const ref = await evaluateForNext(a.sequence, prompt.slice(N));
      recomputeMs += performance.now() - t;
      const off = await kv.offload(a.sequence, prompt);
      await a.context.dispose();
      log(`  N=${N}: recompute ${(recomputeMs / 1000).toFixed(2)} s; offloaded ${(off.bytesStored / 1e6).toFixed(1)} MB in ${off.blocksStored} blocks`);

      const timed = async (fn: (seq: Awaited<ReturnType<typeof freshSequence>>['sequence']) => Promise<{ probabilities: Map<Token, number> } & Partial<RestoreResult>>) => {
        const c = await freshSequence(model, ctx);
        try {
          const t0 = performance.now();
          const r = await fn(c.sequence);
          return { ms: performance.now() - t0, r };
        } finally {
          await c.context.dispose();
        }
      };
      let identical = true;
      const check = (r: { probabilities: Map<Token, number> } & Partial<RestoreResult>, what: string): void => {
        const ok = sameProbabilities(r.probabilities, ref.probabilities) && (r.source === undefined || (r.source === 'warehouse' && r.restoredTokens === N));
        if (!ok) log(`  N=${N}: ${what} is NOT identical to recompute (source ${r.source ?? 'file'}, restored ${r.restoredTokens ?? N})`);
        identical &&= ok;
      };
      // (b) local file, best of RUNS.
      const local: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const x = await timed(async (seq) => {
          await seq.loadStateFromFile(localFile, { acceptRisk: true });
          return evaluateForNext(seq, prompt.slice(N));
        });
        check(x.r, 'local file');
        local.push(x.ms);
      }
      // (c) the gateway's DRAM tier (the blocks were just written through it), best of RUNS.
      const dram: number[] = [];
      let warehouseBytes = 0;
      let dramTimings: RestoreResult['timings'] | undefined;
      let dramFile = '';
      for (let i = 0; i < RUNS; i++) {
        const x = await timed((seq) => kv.restoreOrPrefill(seq, prompt));
        check(x.r, 'warehouse (DRAM tier)');
        if (dram.length === 0 || x.ms < Math.min(...dram)) dramTimings = x.r.timings;
        dram.push(x.ms);
        dramFile = x.r.stateFile ?? '';
        warehouseBytes = x.r.bytesFetched ?? 0;
      }
      const dramFetch: number[] = [];
      let dramFetchTimings: RestoreResult['timings'] | undefined;
      let dramFetchFile = '';
      for (let i = 0; i < RUNS; i++) {
        const x = await timed((seq) => kvFetch.restoreOrPrefill(seq, prompt));
        check(x.r, 'warehouse (DRAM tier, fetched)');
        if (dramFetch.length === 0 || x.ms < Math.min(...dramFetch)) dramFetchTimings = x.r.timings;
        dramFetch.push(x.ms);
        dramFetchFile = x.r.stateFile ?? '';
      }
      const rawHttpMs = await rawHttpGetMs(N / B, Math.ceil(warehouseBytes / (N / B)), 8);
      // (d) cold: a new gateway process, nothing cached, for each run (a second restore through the
      // same gateway would hit its DRAM tier).
      let cold: Awaited<ReturnType<typeof timed>> | undefined;
      for (let i = 0; i < COLD_RUNS; i++) {
        gw2 = await restartGatewayWarm(cluster, join(work, 'cluster'), warehouse, gw2 ?? cluster.gateway);
        const x = await timed((seq) => kv.restoreOrPrefill(seq, prompt));
        check(x.r, 'warehouse (cold)');
        if (cold === undefined || x.ms < cold.ms) cold = x;
      }
      if (cold === undefined) throw new Error('no cold run');
      const point: TtftPoint = {
        tokens: N,
        recomputeMs,
        localFileMs: Math.min(...local),
        warehouseDramMs: Math.min(...dram),
        warehouseDramFetchMs: Math.min(...dramFetch),
        warehouseColdMs: cold.ms,
        stateFiles: { dram: dramFile, dramFetch: dramFetchFile, cold: cold.r.stateFile ?? '' },
        stateFileBytes: statSync(localFile).size,
        warehouseBytes,
        coldTimings: cold.r.timings!,
        dramTimings: dramTimings!,
        dramFetchTimings: dramFetchTimings!,
        rawHttpMs,
        identical,
      };
      const ms = (x: RestoreResult['timings']): string => JSON.stringify(Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Math.round(v)])));
      log(`  N=${N}: local file ${point.localFileMs.toFixed(0)} ms, warehouse DRAM ${point.warehouseDramMs.toFixed(0)} ms (${dramFile}) ${ms(point.dramTimings)}, DRAM fetched ${point.warehouseDramFetchMs.toFixed(0)} ms (${dramFetchFile}) ${ms(point.dramFetchTimings)}, warehouse cold ${point.warehouseColdMs.toFixed(0)} ms (${point.stateFiles.cold}) ${ms(point.coldTimings)}, raw HTTP GET of the same blocks ${rawHttpMs.toFixed(0)} ms, identical ${identical}`);
      points.push(point);
      rmSync(localFile, { force: true });
    }
    await kv.close();
    await kvFetch.close();
    await model.dispose();
    return { modelBytes: g.sizeBytes, kvBytesPerToken: kvBytesPerToken(DEMO_DIMS), blockTokens: B, threads, points };
  } finally {
    await warehouse?.close();
    await llama.dispose();
    await gw2?.stop();
    await cluster?.stop();
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  }
}
