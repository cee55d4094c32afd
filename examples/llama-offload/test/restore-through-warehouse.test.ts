import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';
import type { LocalCluster } from '@tw/twctl';
import type { ManagedProcess } from '@tw/twctl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBlock } from '../src/block-value.js';
import { restartGateway, startWarehouse } from '../src/cluster.js';
import { evaluateForNext, freshSequence, loadEngine, loadModel } from '../src/engine.js';
import { modelFingerprint } from '../src/fingerprint.js';
import { generateLlamaGguf } from '../src/gguf/generate-llama.js';
import { TINY_DIMS } from '../src/gguf/llama-spec.js';
import { KvOffload, type RestoreResult } from '../src/kv-offload.js';
import { sameProbabilities, seededPrompt } from '../src/prompt.js';
import { NativeWarehouse, type Warehouse, WarehouseClient } from '../src/warehouse-client.js';

// A 5 MB random Llama (4 layers, 8 heads, 2 KV heads, 1 KiB of KV per token), a 300-token
// prompt in blocks of 32 tokens (9 cacheable blocks, the last 12 tokens always evaluated).
const N = 300;
const B = 32;
const CONTEXT = 1024;
const THREADS = 2;

describe('llama.cpp KV offload through the gateway and the embedded cluster (ec:4+2)', () => {
  let dir: string;
  let cluster: (LocalCluster & { gatewayHttp: string }) | undefined;
  let restartedGateway: ManagedProcess | undefined;
  let llama: Llama | undefined;
  let model: LlamaModel;
  let fingerprint: string;
  let warehouse: NativeWarehouse;
  let kv: KvOffload;
  const fallbacks: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-llama-offload-'));
    const modelPath = join(dir, 'tiny.gguf');
    generateLlamaGguf(modelPath, TINY_DIMS, 7);
    fingerprint = await modelFingerprint(modelPath);
    // The cluster's processes start while the engine loads.
    const started = startWarehouse({ dataDir: join(dir, 'cluster'), coordinators: 1, storageNodes: 6, redundancy: 'ec:4+2' });
    llama = await loadEngine({ threads: THREADS });
    model = await loadModel(llama, modelPath);
    cluster = await started;
    // Blocks over the native protocol (the proxy test below drives the HTTP client).
    warehouse = await NativeWarehouse.connect({ address: cluster.gatewayNative! });
    kv = new KvOffload({ warehouse, fingerprint, blockTokens: B, tmpDir: dir, onFallback: (r) => fallbacks.push(r) });
  });

  afterAll(async () => {
    await kv?.close();
    await warehouse?.close();
    await restartedGateway?.stop();
    await cluster?.stop();
    await model?.dispose();
    await llama?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The reference: the prompt evaluated in a fresh context with no warehouse, split where the
   * restore split it (its first `split` tokens, then the rest; 0: all at once). The split matters:
   * with flash attention llama.cpp's CPU kernels pick their path by batch size, so a 12-token tail
   * evaluated on its own differs in the last bits from the same tokens inside one 300-token batch
   * (checked: whole vs split differ, restore vs split agree). A restore must reproduce exactly what
   * the engine would have computed for the same batches, bit for bit.
   */
  const recompute = async (tokens: readonly Token[], split = 0) => {
    const { context, sequence } = await freshSequence(model, { contextSize: CONTEXT, threads: THREADS });
    try {
      if (split > 0) await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(0, split));
      return await evaluateForNext(sequence, tokens.slice(split));
    } finally {
      await context.dispose();
    }
  };
  /** First request: prefill, then offload the prompt's blocks. */
  const prefillAndOffload = async (tokens: readonly Token[]) => {
    const { context, sequence } = await freshSequence(model, { contextSize: CONTEXT, threads: THREADS });
    try {
      const first = await evaluateForNext(sequence, tokens);
      const stored = await kv.offload(sequence, tokens);
      return { first, stored };
    } finally {
      await context.dispose();
    }
  };
  /** Second request: a fresh context, restored from the warehouse where possible. */
  const restore = async (tokens: readonly Token[]): Promise<RestoreResult> => {
    const { context, sequence } = await freshSequence(model, { contextSize: CONTEXT, threads: THREADS });
    try {
      return await kv.restoreOrPrefill(sequence, tokens);
    } finally {
      await context.dispose();
    }
  };

  it('a restored prefix gives next-token probabilities bit-identical to recompute', async () => {
    const prompt = seededPrompt(N, TINY_DIMS.vocabSize, 1);
    const ref = await recompute(prompt);
    const { first, stored } = await prefillAndOffload(prompt);
    expect(sameProbabilities(first.probabilities, ref.probabilities)).toBe(true);
    expect(stored.blocksStored).toBe(9);
    expect(stored.bytesStored).toBeGreaterThan(9 * B * 1024);

    const r = await restore(prompt);
    expect(r.source).toBe('warehouse');
    expect(r.restoredTokens).toBe(9 * B);
    expect(r.evaluatedTokens).toBe(N - 9 * B);
    // The gateway runs on this host with a delivery folder: it writes the blocks into the file.
    expect(r.stateFile).toBe('delivered');
    const refSplit = await recompute(prompt, 9 * B);
    expect(r.token).toBe(refSplit.token);
    expect(sameProbabilities(r.probabilities, refSplit.probabilities)).toBe(true);

    const again = await restore(prompt);
    expect(again.stateFile).toBe('delivered');
    expect(sameProbabilities(again.probabilities, refSplit.probabilities)).toBe(true);

    // Without DELIVER (a client that only fetches), each fetched block is written into the file
    // as it arrives; the blocks' buffers are kept for the next restore, which reads into them
    // (blocks of another restore must not leak into it: same probabilities again).
    const fetchOnly: Warehouse = {
      put: (k, v, o) => warehouse.put(k, v, o),
      get: (k, o) => warehouse.get(k, o),
      delete: (k, o) => warehouse.delete(k, o),
      lookupPrefix: (k, o) => warehouse.lookupPrefix(k, o),
    };
    const kvFetch = new KvOffload({ warehouse: fetchOnly, fingerprint, blockTokens: B, tmpDir: dir });
    for (let round = 0; round < 2; round++) {
      const { context, sequence } = await freshSequence(model, { contextSize: CONTEXT, threads: THREADS });
      try {
        const h = await kvFetch.restoreOrPrefill(sequence, prompt);
        expect(h.stateFile).toBe('streamed');
        expect(h.restoredTokens).toBe(9 * B);
        expect(sameProbabilities(h.probabilities, refSplit.probabilities)).toBe(true);
        expect(kvFetch.hostBufferBytesIdle).toBeGreaterThan(0);
      } finally {
        await context.dispose();
      }
    }
    await kvFetch.close();

    // A second offload of the same prompt stores nothing new.
    expect((await prefillAndOffload(prompt)).stored.blocksStored).toBe(0);

    // A prompt that shares the first 3 blocks restores those, and only those.
    const other = [...prompt.slice(0, 3 * B + 5), ...seededPrompt(N - 3 * B - 5, TINY_DIMS.vocabSize, 99)];
    const r2 = await restore(other);
    expect(r2.restoredTokens).toBe(3 * B);
    expect(sameProbabilities(r2.probabilities, (await recompute(other, 3 * B)).probabilities)).toBe(true);
  });

  it('a miss falls back to prefill', async () => {
    const prompt = seededPrompt(N, TINY_DIMS.vocabSize, 2);
    const r = await restore(prompt);
    expect(r.source).toBe('prefill');
    expect(r.restoredTokens).toBe(0);
    expect(r.fallbackReason).toBe('miss');
    expect(sameProbabilities(r.probabilities, (await recompute(prompt)).probabilities)).toBe(true);
  });

  it('a corrupted, partial or foreign block is never loaded: the restore falls back', async () => {
    const prompt = seededPrompt(N, TINY_DIMS.vocabSize, 3);
    const ref = await recompute(prompt);
    await prefillAndOffload(prompt);
    const keys = kv.keysFor(prompt);

    // Block 0 with one flipped bit in its KV bytes: nothing is loaded.
    const good0 = (await warehouse.get(keys[0]!))!;
    const bad0 = Buffer.from(good0);
    bad0[bad0.length - 100]! ^= 0x01;
    await warehouse.put(keys[0]!, bad0);
    let r = await restore(prompt);
    expect(r.source).toBe('prefill');
    expect(r.fallbackReason).toMatch(/block 0: checksum mismatch/);
    // The gateway delivered it into the state file first: the tail checksum it reported gave it away.
    expect(fallbacks.some((f) => /^delivery failed: .*block 0: checksum mismatch/.test(f))).toBe(true);
    expect(sameProbabilities(r.probabilities, ref.probabilities)).toBe(true);
    await warehouse.put(keys[0]!, good0);

    // Block 4 cut short (a partial value): the 4 verified leading blocks are used, not block 4.
    const good4 = (await warehouse.get(keys[4]!))!;
    await warehouse.put(keys[4]!, good4.subarray(0, good4.length - 1000));
    r = await restore(prompt);
    expect(r.source).toBe('warehouse');
    expect(r.restoredTokens).toBe(4 * B);
    expect(r.fallbackReason).toMatch(/block 4: payload is .* bytes/);
    expect(r.stateFile).toBe('gathered');
    expect(sameProbabilities(r.probabilities, (await recompute(prompt, 4 * B)).probabilities)).toBe(true);

    // Block 0 replaced by a block of another model (another fingerprint), checksum intact.
    const foreign = encodeBlock({ fingerprint: 'another-model', blockIndex: 0, firstToken: 0, cells: B, layout: { vTrans: true, layers: [] } }, [Buffer.alloc(B * 16)]);
    await warehouse.put(keys[0]!, Buffer.concat(foreign.parts));
    r = await restore(prompt);
    expect(r.source).toBe('prefill');
    expect(r.fallbackReason).toMatch(/model fingerprint another-model/);
    expect(sameProbabilities(r.probabilities, ref.probabilities)).toBe(true);
    expect(fallbacks.length).toBeGreaterThanOrEqual(3);
  });

  it('a body cut off mid-transfer is never loaded: the blocks before it are used', async () => {
    const prompt = seededPrompt(N, TINY_DIMS.vocabSize, 5);
    const ref = await recompute(prompt, 2 * B);
    await prefillAndOffload(prompt);
    const keys = kv.keysFor(prompt);
    // A proxy in front of the gateway that sends half of block 2's body, then drops the connection.
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
          const up = await fetch(`${cluster!.gatewayHttp}${req.url}`, { method: req.method, headers: { 'content-type': String(req.headers['content-type'] ?? 'application/octet-stream') }, ...(body === undefined ? {} : { body }) });
          const bytes = Buffer.from(await up.arrayBuffer());
          res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/octet-stream', 'content-length': bytes.length });
          if (req.method === 'GET' && req.url?.includes(encodeURIComponent(keys[2]!))) {
            res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
          } else {
            res.end(bytes);
          }
        })().catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (proxy.address() as AddressInfo).port;
      const viaProxy = new KvOffload({ warehouse: new WarehouseClient({ url: `http://127.0.0.1:${port}` }), fingerprint, blockTokens: B, tmpDir: dir });
      const { context, sequence } = await freshSequence(model, { contextSize: CONTEXT, threads: THREADS });
      try {
        const r = await viaProxy.restoreOrPrefill(sequence, prompt);
        expect(r.source).toBe('warehouse');
        expect(r.restoredTokens).toBe(2 * B);
        expect(r.fallbackReason).toMatch(/did not arrive whole|block 2/);
        expect(sameProbabilities(r.probabilities, ref.probabilities)).toBe(true);
      } finally {
        await context.dispose();
        await viaProxy.close();
      }
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('restores from the storage nodes after a gateway restart and SIGKILL of two storage nodes', async () => {
    const prompt = seededPrompt(N, TINY_DIMS.vocabSize, 4);
    const ref = await recompute(prompt, 9 * B);
    await prefillAndOffload(prompt);
    // A new gateway has an empty DRAM tier: every block comes back from fragments.
    restartedGateway = await restartGateway(cluster!, join(dir, 'cluster'));
    const victims = cluster!.storage.slice(0, 2);
    for (const v of victims) v.child.kill('SIGKILL');
    await Promise.all(victims.map((v) => v.exited));
    const r = await restore(prompt);
    expect(r.source).toBe('warehouse');
    expect(r.stateFile).toBe('delivered');
    expect(r.restoredTokens).toBe(9 * B);
    expect(r.token).toBe(ref.token);
    expect(sameProbabilities(r.probabilities, ref.probabilities)).toBe(true);
  });
});
