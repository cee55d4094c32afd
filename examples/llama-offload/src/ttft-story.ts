import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalCluster, ManagedProcess } from '@tw/twctl';
import { restartGatewayWarm } from './cluster.js';
import { evaluateForNext, freshSequence, loadEngine, loadModel } from './engine.js';
import { modelFingerprint } from './fingerprint.js';
import { ensureLlamaGguf } from './gguf/generate-llama.js';
import { DEMO_DIMS, kvBytesPerToken } from './gguf/llama-spec.js';
import { KvOffload } from './kv-offload.js';
import { sameProbabilities, seededPrompt } from './prompt.js';
import { NativeWarehouse, type Warehouse, WarehouseClient } from './warehouse-client.js';

const here = dirname(fileURLToPath(import.meta.url));
const secs = (ms: number): string => (ms / 1000).toFixed(2);

export interface TtftStoryOptions {
  /** The gateway's HTTP base URL. */
  readonly gatewayUrl: string;
  /** host:port of the gateway's native protocol: used for the blocks when given (faster than HTTP). */
  readonly gatewayNative?: string;
  /**
   * The cluster (and its data folder) when the caller owns it: the gateway is then restarted
   * between the two requests, so the second one reads from the storage nodes, not from DRAM.
   */
  readonly restartable?: { cluster: LocalCluster; dataDir: string };
  /** Prompt tokens (default 4097: 16 blocks of 256 cached + the new token). */
  readonly tokens?: number;
  readonly blockTokens?: number;
  readonly threads?: number;
  readonly print: (line: string) => void;
}

export interface TtftStoryResult {
  readonly prefillMs: number;
  readonly restoreMs: number;
  readonly offloadedBytes: number;
  readonly restoredTokens: number;
  readonly identical: boolean;
}

/**
 * The time-to-first-token story with llama.cpp on a generated ~300 MB random-weight Llama: the
 * first request prefills and offloads its KV cache; the second, in a fresh context, restores it
 * from the warehouse and must produce the same first token.
 */
export async function ttftStory(o: TtftStoryOptions): Promise<TtftStoryResult> {
  const N = o.tokens ?? 4097;
  const B = o.blockTokens ?? 256;
  const threads = o.threads ?? 2;
  const print = o.print;
  if (!Number.isInteger(N) || N < 2 || N > DEMO_DIMS.contextLength - 64) throw new RangeError(`tokens must be 2..${DEMO_DIMS.contextLength - 64}`);
  if (!Number.isInteger(B) || B < 1 || B >= N) throw new RangeError('blockTokens must be 1..tokens-1');
  const modelDir = join(here, '..', '.models');
  mkdirSync(modelDir, { recursive: true });
  const t0 = performance.now();
  const g = ensureLlamaGguf(join(modelDir, 'random-llama-8L-1024d.gguf'), DEMO_DIMS, 1);
  print(
    `model: random-weight Llama, ${DEMO_DIMS.layers} layers, ${DEMO_DIMS.heads} heads, ${DEMO_DIMS.kvHeads} KV heads, head dim ${DEMO_DIMS.hiddenSize / DEMO_DIMS.heads}, f16, ${(g.sizeBytes / 1e6).toFixed(0)} MB (${g.reused ? 'reused' : `generated in ${secs(performance.now() - t0)} s`}); KV ${kvBytesPerToken(DEMO_DIMS)} bytes/token; llama.cpp on ${threads} CPU threads`,
  );
  const fingerprint = await modelFingerprint(g.path);
  const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tw-ttft-story-'));
  const llama = await loadEngine({ threads });
  let gw2: ManagedProcess | undefined;
  let closeWarehouse: (() => Promise<void> | undefined) | undefined;
  try {
    const model = await loadModel(llama, g.path);
    try {
      const warehouse: Warehouse = o.gatewayNative === undefined ? new WarehouseClient({ url: o.gatewayUrl }) : await NativeWarehouse.connect({ address: o.gatewayNative });
      closeWarehouse = () => warehouse.close?.();
      const kv = new KvOffload({ warehouse, fingerprint, blockTokens: B, tmpDir: work, onFallback: (r) => print(`  (fallback: ${r})`) });
      // A prompt no earlier run stored: the clock seeds it.
      const prompt = seededPrompt(N, DEMO_DIMS.vocabSize, Date.now() % 1_000_000_007);
      const ctx = { contextSize: N + 64, threads };

      const a = await freshSequence(model, ctx);
      const ta = performance.now();
      const first = await evaluateForNext(a.sequence, prompt);
      const prefillMs = performance.now() - ta;
      const off = await kv.offload(a.sequence, prompt);
      await a.context.dispose();
      print(`first request: prefill ${N} tokens, ${secs(prefillMs)} s; offloaded ${(off.bytesStored / 1e6).toFixed(1)} MB (${off.blocksStored} blocks of ${B} tokens)`);

      if (o.restartable !== undefined) {
        gw2 = await restartGatewayWarm(o.restartable.cluster, o.restartable.dataDir, warehouse);
        print('  (gateway restarted: its DRAM tier is empty, every block comes from the storage nodes)');
      }
      const b = await freshSequence(model, ctx);
      const tb = performance.now();
      const r = await kv.restoreOrPrefill(b.sequence, prompt);
      const restoreMs = performance.now() - tb;
      await b.context.dispose();
      const identical = r.token === first.token && sameProbabilities(r.probabilities, first.probabilities);
      if (r.source === 'warehouse') {
        print(
          `second request, fresh context: restored from the warehouse in ${secs(restoreMs)} s (${r.restoredTokens} tokens, ${(r.bytesFetched / 1e6).toFixed(1)} MB: lookup ${r.timings.lookupMs.toFixed(0)} ms, ${r.stateFile === 'delivered' ? 'delivered into the state file by the gateway + verify' : 'fetch + verify'} ${r.timings.fetchMs.toFixed(0)} ms, load ${r.timings.loadMs.toFixed(0)} ms, ${r.evaluatedTokens} new token(s) ${r.timings.evaluateMs.toFixed(0)} ms); first token ${identical ? 'identical (next-token probabilities bit for bit)' : 'DIFFERENT'}; ${(prefillMs / restoreMs).toFixed(1)}x faster than the prefill`,
        );
      } else {
        print(`second request, fresh context: NOT restored (${r.fallbackReason ?? 'unknown'}); prefilled again in ${secs(restoreMs)} s; first token ${identical ? 'identical' : 'DIFFERENT'}`);
      }
      await kv.close();
      return { prefillMs, restoreMs, offloadedBytes: off.bytesStored, restoredTokens: r.restoredTokens, identical };
    } finally {
      await model.dispose();
    }
  } finally {
    await closeWarehouse?.();
    await llama.dispose();
    await gw2?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
