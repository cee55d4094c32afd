import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { twctlErrors } from './errors.js';
import type { LocalCluster } from './local-cluster.js';

/**
 * The demo workload of `npm start`, as an inference engine would use the warehouse, through the
 * gateway's HTTP API:
 * 1. prefill of prompt A: store its KV cache, one block per 256-token chunk, under keys that
 *    chain by prefix (each key hashes the previous key and the chunk's tokens, as vLLM and
 *    LMCache do);
 * 2. prompt B shares A's first part: one lookup-prefix call says how many of its chunks are
 *    cached (hits), and where the misses start;
 * 3. read the hits back and verify every byte;
 * 4. SIGKILL a storage node and read again: ec:4+2 serves the blocks from the remaining nodes.
 */

// A small Llama-shaped model: 8 layers, 4 KV heads, head dim 64, bf16 -> 8 KiB of KV per token.
const LAYERS = 8;
const KV_HEADS = 4;
const HEAD_DIM = 64;
const TOKENS_PER_CHUNK = 256;
const CHUNK_BYTES = 2 * LAYERS * KV_HEADS * HEAD_DIM * 2 * TOKENS_PER_CHUNK; // 2 MiB
const PROMPT_A_CHUNKS = 48;
const SHARED_CHUNKS = 32;
const PROMPT_B_CHUNKS = 40;
const INFLIGHT = 4;

function tokensOf(prompt: string, chunk: number): Buffer {
  // Shared prefix: both prompts have identical tokens for the first SHARED_CHUNKS chunks.
  const source = chunk < SHARED_CHUNKS ? 'shared-system-prompt' : prompt;
  return createHash('sha256').update(`${source}/${chunk}`).digest();
}

function chainKeys(prompt: string, chunks: number): string[] {
  const keys: string[] = [];
  let prev = '';
  for (let i = 0; i < chunks; i++) {
    prev = createHash('sha256').update(prev).update(tokensOf(prompt, i)).digest('hex').slice(0, 32);
    // LMCache's object-key shape: model @ kv_rank (hex) @ chunk hash
    keys.push(`demo-llama-8l@00000100@${prev}`);
  }
  return keys;
}

/** The KV bytes of a chunk: deterministic, so a read can be verified byte for byte. */
function chunkBytes(key: string): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_BYTES);
  let block = createHash('sha256').update(key).digest();
  for (let off = 0; off < CHUNK_BYTES; off += 32) {
    block.copy(out, off);
    if ((off & 4095) === 0) block = createHash('sha256').update(block).digest();
  }
  return out;
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && !line.startsWith('#')) sum += Number(line.split(' ').pop());
  return sum;
}

export async function runDemo(cluster: LocalCluster, http: string, print: (line: string) => void): Promise<void> {
  const blockUrl = (key: string): string => `${http}/v1/namespaces/default/blocks/${encodeURIComponent(key)}`;
  const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  const rate = (bytes: number, ms: number): string => `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;
  const lookup = async (keys: string[]): Promise<number> => {
    const res = await fetch(`${http}/v1/namespaces/default/lookup-prefix`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ keys }) });
    if (!res.ok) throw twctlErrors.create('TW_DEMO_FAILED', `lookup-prefix answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { hits: number }).hits;
  };
  const readAll = async (keys: string[]): Promise<number> => {
    const t0 = performance.now();
    await pool(keys, INFLIGHT, async (key) => {
      const res = await fetch(blockUrl(key));
      if (res.status !== 200) throw twctlErrors.create('TW_DEMO_FAILED', `GET ${key} answered ${res.status}: ${await res.text()}`);
      const got = Buffer.from(await res.arrayBuffer());
      if (!got.equals(chunkBytes(key))) throw twctlErrors.create('TW_DEMO_FAILED', `GET ${key} returned different bytes`);
    });
    return performance.now() - t0;
  };

  const keysA = chainKeys('prompt-a', PROMPT_A_CHUNKS);
  const keysB = chainKeys('prompt-b', PROMPT_B_CHUNKS);
  print(`\ndemo: a Llama-shaped model (${LAYERS} layers, ${KV_HEADS} KV heads, head dim ${HEAD_DIM}, bf16): ${CHUNK_BYTES / TOKENS_PER_CHUNK / 1024} KiB of KV per token, ${mib(CHUNK_BYTES)} per ${TOKENS_PER_CHUNK}-token chunk`);

  const already = await lookup(keysA);
  if (already === PROMPT_A_CHUNKS) {
    print(`1. prompt A (${PROMPT_A_CHUNKS * TOKENS_PER_CHUNK} tokens): all ${PROMPT_A_CHUNKS} chunks are already stored (a previous run's data survived the restart)`);
  } else {
    const t0 = performance.now();
    await pool(keysA, INFLIGHT, async (key) => {
      const res = await fetch(`${blockUrl(key)}?mode=sync`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: chunkBytes(key) });
      if (res.status !== 201 && res.status !== 202) throw twctlErrors.create('TW_DEMO_FAILED', `PUT ${key} answered ${res.status}: ${await res.text()}`);
    });
    const ms = performance.now() - t0;
    print(`1. prompt A (${PROMPT_A_CHUNKS * TOKENS_PER_CHUNK} tokens): stored ${PROMPT_A_CHUNKS} chunks, ${mib(PROMPT_A_CHUNKS * CHUNK_BYTES)}, ec:4+2 over 6 nodes, committed, in ${(ms / 1000).toFixed(1)} s (${rate(PROMPT_A_CHUNKS * CHUNK_BYTES, ms)})`);
  }

  const hits = await lookup(keysB);
  print(`2. prompt B (${PROMPT_B_CHUNKS * TOKENS_PER_CHUNK} tokens) shares its first ${SHARED_CHUNKS * TOKENS_PER_CHUNK} tokens with A: one lookup-prefix call -> ${hits} hits, ${PROMPT_B_CHUNKS - hits} misses (prefill only ${(PROMPT_B_CHUNKS - hits) * TOKENS_PER_CHUNK} tokens)`);
  if (hits !== SHARED_CHUNKS) throw twctlErrors.create('TW_DEMO_FAILED', `expected ${SHARED_CHUNKS} hits, got ${hits}`);

  const hitKeys = keysB.slice(0, hits);
  const readMs = await readAll(hitKeys);
  print(`3. read the ${hits} hits back, every byte verified: ${mib(hits * CHUNK_BYTES)} in ${(readMs / 1000).toFixed(2)} s (${rate(hits * CHUNK_BYTES, readMs)})`);

  const victim = cluster.storage[1]!;
  const degradedBefore = await metric(http, 'tw_gateway_degraded_reads');
  victim.kill('SIGKILL');
  await victim.exited;
  const degradedMs = await readAll(hitKeys);
  const degraded = (await metric(http, 'tw_gateway_degraded_reads')) - degradedBefore;
  print(`4. SIGKILLed ${victim.name} (pid ${victim.pid}); read the ${hits} hits again: all verified in ${(degradedMs / 1000).toFixed(2)} s (${rate(hits * CHUNK_BYTES, degradedMs)}), ${degraded} of them rebuilt from parity`);
  await cluster.restartStorage(1);
  print(`   restarted ${victim.name}; it re-registered with the coordinators`);
  await llamaStory(cluster, http, print);
}

/**
 * The same story with a real engine, when examples/llama-offload is installed (`npm run
 * demo:ttft` installs it): llama.cpp prefills a prompt, offloads its KV cache, and a fresh context
 * restores it from the warehouse. Skipped, with a hint, otherwise; a failure there is reported
 * and does not stop the cluster.
 */
async function llamaStory(cluster: LocalCluster, http: string, print: (line: string) => void): Promise<void> {
  const example = resolve(dirname(fileURLToPath(import.meta.url)), '../../../examples/llama-offload');
  if (!existsSync(join(example, 'node_modules/node-llama-cpp')) || !import.meta.url.endsWith('.ts')) {
    print('5. (a real engine: `npm run demo:ttft` installs llama.cpp (node-llama-cpp) and shows time-to-first-token with and without the warehouse)');
    return;
  }
  print('5. a real engine: llama.cpp (node-llama-cpp, CPU) with a generated random-weight Llama model');
  try {
    const story = (await import(pathToFileURL(join(example, 'src/ttft-story.ts')).href)) as {
      ttftStory(o: { gatewayUrl: string; gatewayNative?: string; tokens: number; print: (line: string) => void }): Promise<unknown>;
    };
    await story.ttftStory({ gatewayUrl: http, ...(cluster.gatewayNative === undefined ? {} : { gatewayNative: cluster.gatewayNative }), tokens: 2049, print: (l) => print(`   ${l}`) });
  } catch (err) {
    print(`   the engine demo failed: ${(err as Error).message}`);
  }
}
