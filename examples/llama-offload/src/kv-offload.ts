import { randomBytes } from 'node:crypto';
import { open, readFile, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import { isTwError } from '@tw/errors';
import { cacheableBlocks, prefixBlockKeys } from './block-keys.js';
import { checkBlockTokens, decodeBlock, decodeBlockHead, encodeBlock } from './block-value.js';
import { llamaOffloadErrors } from './errors.js';
import { evaluateForNext } from './engine.js';
import { StagedStateFile } from './staged-state-file.js';
import { assembleStateFile, parseStateFile, payloadBytes, planStateFile, sameLayout, sliceCells, type StateLayout } from './state-file.js';
import type { Warehouse } from './warehouse-client.js';

export interface KvOffloadOptions {
  readonly warehouse: Warehouse;
  /** modelFingerprint() of the loaded model. */
  readonly fingerprint: string;
  /** Tokens per block (and per key). */
  readonly blockTokens: number;
  /** Where state files are staged for llama.cpp (it loads and saves only files). */
  readonly tmpDir: string;
  /** Block PUTs / GETs in flight at once. */
  readonly concurrency?: number;
  /** Called when a restore falls back, with why. */
  readonly onFallback?: (reason: string, err?: unknown) => void;
  /**
   * Host buffers kept between restores for fetched blocks (bytes, default 512 MiB; 0 disables):
   * as an engine keeps a pinned pool, so a restore does not pay page faults on fresh memory.
   */
  readonly hostBufferBytesMax?: number;
}

export interface FirstToken {
  readonly token: Token;
  readonly probabilities: Map<Token, number>;
}

export interface OffloadResult {
  readonly blocksStored: number;
  readonly blocksAlreadyStored: number;
  readonly bytesStored: number;
  readonly stateFileBytes: number;
}

export type RestoreResult = FirstToken & {
  /** 'warehouse': a prefix came from the warehouse; 'prefill': a miss or a refused fetch. */
  readonly source: 'warehouse' | 'prefill';
  readonly restoredTokens: number;
  readonly evaluatedTokens: number;
  readonly bytesFetched: number;
  readonly fallbackReason?: string;
  /**
   * How the state file was staged: 'streamed' (each block written into place as it arrived),
   * 'gathered' (copied together after the fetch: a transposed V, or fewer verified blocks than
   * looked up), 'delivered' (the gateway wrote the blocks into it: DELIVER), 'none' (nothing loaded).
   */
  readonly stateFile: 'streamed' | 'gathered' | 'delivered' | 'none';
  /** fetchMs: fetch, verify and write the blocks into the state file (overlapped); loadMs: llama.cpp's load (plus a gather when the streamed file is unusable). */
  readonly timings: { lookupMs: number; fetchMs: number; loadMs: number; evaluateMs: number };
};

/** Default bound of the host buffers kept between restores. */
const HOST_BUFFER_BYTES_DEFAULT = 512 * 1024 * 1024;

async function pool<T>(n: number, count: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, count) }, worker));
  return out;
}

/**
 * The KV cache of one model in the warehouse, block by block. A block holds the KV (every layer's
 * K and V) of B consecutive tokens of a prompt, cut out of llama.cpp's sequence state file, under
 * a key that chains the whole prefix up to it; a restore reassembles the state file of the longest
 * stored prefix and hands it to llama.cpp.
 */
export class KvOffload {
  readonly #o: KvOffloadOptions;
  /** Idle host buffers for fetched blocks, all `#bufferBytes` long (the largest block seen). */
  #buffers: Buffer[] = [];
  #bufferBytes = 0;
  /** Memory this instance allocated or adopted for blocks (safe to read into again). */
  readonly #owned = new WeakSet<ArrayBufferLike>();
  /** The state layout of this model's blocks, once one was cut or verified (it never changes for a fingerprint). */
  #layout: StateLayout | undefined;

  /** Bytes of host buffers kept idle for the next restore. */
  get hostBufferBytesIdle(): number {
    return this.#buffers.length * this.#bufferBytes;
  }

  /** A buffer for one block, or undefined until a block's size is known. */
  #takeBuffer(): Buffer | undefined {
    if (this.#bufferBytes === 0 || (this.#o.hostBufferBytesMax ?? HOST_BUFFER_BYTES_DEFAULT) === 0) return undefined;
    const pooled = this.#buffers.pop();
    if (pooled !== undefined) return pooled;
    const fresh = Buffer.allocUnsafeSlow(this.#bufferBytes);
    this.#owned.add(fresh.buffer);
    return fresh;
  }

  /**
   * Keeps the buffers behind the values of a finished restore, bounded: buffers this instance
   * allocated, and values that own their whole ArrayBuffer (a client's exact-size buffer). Never
   * a view into memory something else may share, such as Node's small-buffer slab.
   */
  #keepBuffers(values: readonly Buffer[]): void {
    const cap = this.#o.hostBufferBytesMax ?? HOST_BUFFER_BYTES_DEFAULT;
    for (const v of values) {
      const own = this.#owned.has(v.buffer) || (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength);
      if (!own) continue;
      this.#owned.add(v.buffer);
      const whole = Buffer.from(v.buffer, 0, v.buffer.byteLength);
      if (whole.length < this.#bufferBytes) continue;
      if (whole.length > this.#bufferBytes) {
        // A larger block than before: buffers of the old size would not hold it.
        this.#bufferBytes = whole.length;
        this.#buffers = [];
      }
      if ((this.#buffers.length + 1) * this.#bufferBytes > cap || this.#buffers.some((b) => b.buffer === whole.buffer)) continue;
      this.#buffers.push(whole);
    }
  }
  constructor(o: KvOffloadOptions) {
    if (!Number.isInteger(o.blockTokens) || o.blockTokens < 1) throw new RangeError('blockTokens must be a positive integer');
    this.#o = o;
  }

  /** Staging files kept between restores, one per folder, while no restore uses them. */
  readonly #kept = new Map<string, { readonly path: string; busy: boolean }>();

  /**
   * A state file path in `dir` for one restore: the kept one when it is free (its pages are
   * already allocated), else a fresh one removed after use.
   */
  #stagingFile(dir: string): { path: string; release(): Promise<void> } {
    let k = this.#kept.get(dir);
    if (k === undefined) {
      k = { path: join(dir, `tw-kv-${process.pid}-${randomBytes(6).toString('hex')}.state`), busy: false };
      this.#kept.set(dir, k);
    }
    if (!k.busy) {
      const kept = k;
      kept.busy = true;
      return { path: kept.path, release: async () => void (kept.busy = false) };
    }
    const path = join(dir, `tw-kv-${process.pid}-${randomBytes(6).toString('hex')}.state`);
    return { path, release: () => unlink(path).catch(() => undefined) };
  }

  /** Removes the staging files kept between restores. */
  async close(): Promise<void> {
    const kept = [...this.#kept.values()];
    this.#kept.clear();
    await Promise.all(kept.map((k) => unlink(k.path).catch(() => undefined)));
  }

  #tmp(what: string): string {
    return join(this.#o.tmpDir, `${what}-${process.pid}-${randomBytes(6).toString('hex')}.bin`);
  }

  keysFor(tokens: readonly Token[]): string[] {
    return prefixBlockKeys(this.#o.fingerprint, tokens as unknown as number[], this.#o.blockTokens, cacheableBlocks(tokens.length, this.#o.blockTokens));
  }

  /**
   * Stores the blocks of `tokens` that the warehouse lacks, from `sequence`, which must hold
   * exactly `tokens` evaluated from an empty context (it may hold more: only the first
   * cacheable blocks are cut). Runs after the first token, off the request's critical path.
   */
  async offload(sequence: LlamaContextSequence, tokens: readonly Token[], signal?: AbortSignal): Promise<OffloadResult> {
    const keys = this.keysFor(tokens);
    const B = this.#o.blockTokens;
    const already = await this.#o.warehouse.lookupPrefix(keys, { signal });
    if (already === keys.length) return { blocksStored: 0, blocksAlreadyStored: already, bytesStored: 0, stateFileBytes: 0 };
    const path = this.#tmp('save');
    try {
      await sequence.saveStateToFile(path);
      const state = parseStateFile(await readFile(path));
      this.#layout ??= state.layout;
      for (let i = 0; i < keys.length * B; i++) {
        if (state.tokens[i] !== tokens[i]) throw new Error(`the sequence does not hold the prompt (token ${i} differs)`);
      }
      const sizes = await pool(this.#o.concurrency ?? 4, keys.length - already, async (j) => {
        const b = already + j;
        const { parts, bytes } = encodeBlock({ fingerprint: this.#o.fingerprint, blockIndex: b, firstToken: b * B, cells: B, layout: state.layout }, sliceCells(state, b * B, (b + 1) * B));
        await this.#o.warehouse.put(keys[b]!, Buffer.concat(parts, bytes), { mode: 'sync', signal });
        return bytes;
      });
      return { blocksStored: sizes.length, blocksAlreadyStored: already, bytesStored: sizes.reduce((a, b) => a + b, 0), stateFileBytes: state.bytes.length };
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }

  /**
   * The state file of the first `hits` blocks, written by the gateway into its delivery folder
   * (tmpfs) and loaded. Each block's head is checked (fingerprint, place, length, layout) and
   * the xxh64 of the bytes the gateway wrote must equal the payload checksum the block was stored
   * with; then the tokens are read back from the file and compared with the prompt. Any failure
   * throws (a TwError) before llama.cpp sees the file.
   */
  async #restoreByDelivery(sequence: LlamaContextSequence, keys: readonly string[], hits: number, tokens: readonly Token[], layout: StateLayout, signal: AbortSignal | undefined): Promise<{ bytes: number; deliveredAt: number }> {
    const B = this.#o.blockTokens;
    const w = this.#o.warehouse;
    const file = this.#stagingFile(w.deliveryDir!);
    const path = file.path;
    const name = basename(path);
    const plan = planStateFile(layout, hits, B);
    const tailBytes = payloadBytes(layout, B);
    let staged: StagedStateFile | undefined;
    try {
      staged = await StagedStateFile.create(path, plan);
      let bytes = 0;
      let next = 0;
      let failed: unknown;
      const worker = async (): Promise<void> => {
        while (next < hits && failed === undefined) {
          const i = next++;
          try {
            const scatter = plan.placeBlock(i).map((p) => ({ tailOffset: p.payloadOffset, bytes: p.bytes, fileOffset: p.fileOffset }));
            const r = await w.deliver!(keys[i]!, { file: name, tailBytes, scatter, ...(signal === undefined ? {} : { signal }) });
            if (r === undefined) throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${i} vanished after the lookup`);
            const { header, payloadChecksum } = decodeBlockHead(r.head, { fingerprint: this.#o.fingerprint, blockIndex: i, firstToken: i * B, cells: B }, r.valueBytes);
            if (!sameLayout(header.layout, layout)) throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${i} has another layout`);
            if (r.tailChecksum !== payloadChecksum) throw llamaOffloadErrors.create('TW_LLAMA_BLOCK_CORRUPT', `block ${i}: checksum mismatch`);
            bytes += r.valueBytes;
          } catch (err) {
            failed ??= err;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#o.concurrency ?? 8, hits) }, worker));
      if (failed !== undefined) throw failed;
      const toks = await staged.read(plan.tokensOffset, hits * B * 4);
      for (let i = 0; i < hits; i++) checkBlockTokens(toks.subarray(i * B * 4), { blockIndex: i, tokens: tokens.slice(i * B, (i + 1) * B) as unknown as number[] });
      await staged.close();
      const deliveredAt = performance.now();
      try {
        await sequence.loadStateFromFile(path, { acceptRisk: true });
      } catch (err) {
        throw llamaOffloadErrors.create('TW_LLAMA_STATE_FORMAT', `llama.cpp refused the delivered state: ${(err as Error).message}`, { cause: err });
      }
      return { bytes, deliveredAt };
    } finally {
      await staged?.close().catch(() => undefined);
      await file.release();
    }
  }

  /**
   * The first token of `tokens` in `sequence` (a fresh, empty one): the longest stored prefix is
   * fetched, verified and loaded, the rest evaluated. A miss, a gateway error, or a block that
   * fails verification falls back (to the verified leading blocks, or to a full prefill): a
   * block that does not verify is never loaded.
   */
  async restoreOrPrefill(sequence: LlamaContextSequence, tokens: readonly Token[], signal?: AbortSignal): Promise<RestoreResult> {
    const B = this.#o.blockTokens;
    const keys = this.keysFor(tokens);
    const t0 = performance.now();
    let hits = 0;
    let fallbackReason: string | undefined;
    const fallback = (reason: string, err?: unknown): void => {
      fallbackReason = reason;
      this.#o.onFallback?.(reason, err);
    };
    try {
      // No prefetch: the blocks are fetched at once, and the gateway does not join a GET to an
      // in-flight prefetch of the same block (it would read the fragments twice).
      hits = await this.#o.warehouse.lookupPrefix(keys, { signal });
      if (hits === 0) fallback(keys.length === 0 ? 'prompt shorter than one block' : 'miss');
    } catch (err) {
      fallback(`lookup failed: ${(err as Error).message}`, err);
    }
    const t1 = performance.now();
    // A gateway on this host writes the blocks straight into the state file (DELIVER): no bytes
    // cross a socket. Needs the layout (known once this instance offloaded or restored a block of
    // this model) and an untransposed V; any failure falls back to fetching the blocks.
    const layoutKnown = this.#layout;
    if (hits > 0 && layoutKnown !== undefined && !layoutKnown.vTrans && this.#o.warehouse.deliveryDir !== undefined && this.#o.warehouse.deliver !== undefined) {
      try {
        const d = await this.#restoreByDelivery(sequence, keys, hits, tokens, layoutKnown, signal);
        const t3 = performance.now();
        const next = await evaluateForNext(sequence, tokens.slice(hits * B));
        const t4 = performance.now();
        return {
          ...next,
          source: 'warehouse',
          restoredTokens: hits * B,
          evaluatedTokens: tokens.length - hits * B,
          bytesFetched: d.bytes,
          stateFile: 'delivered',
          timings: { lookupMs: t1 - t0, fetchMs: d.deliveredAt - t1, loadMs: t3 - d.deliveredAt, evaluateMs: t4 - t3 },
        };
      } catch (err) {
        if (!isTwError(err)) throw err;
        fallback(`delivery failed: ${err.message}; fetching the blocks instead`, err);
        await sequence.clearHistory();
      }
    }
    let bytesFetched = 0;
    const payloads: Buffer[] = [];
    // Fetched values, whose buffers go back to the host pool once the state file is written.
    const values: Buffer[] = [];
    let layout: StateLayout | undefined;
    const file = this.#stagingFile(this.#o.tmpDir);
    const path = file.path;
    // With an untransposed V each block is written into the state file as soon as it verifies,
    // while the others are in flight. The file's plan needs the layout, which the first block to
    // verify tells; a block of another layout is not staged (the leading-run check refuses it).
    let stagedLayout: StateLayout | undefined;
    let staging: Promise<StagedStateFile> | undefined;
    let stagingError: unknown;
    const stage = async (i: number, f: { header: { layout: StateLayout }; payload: Buffer }): Promise<void> => {
      if (f.header.layout.vTrans || stagingError !== undefined) return;
      stagedLayout ??= f.header.layout;
      if (!sameLayout(f.header.layout, stagedLayout)) return;
      try {
        staging ??= StagedStateFile.create(path, planStateFile(stagedLayout, hits, B));
        await (await staging).writeBlock(i, f.payload);
      } catch (err) {
        stagingError ??= err;
      }
    };
    let restoredTokens = 0;
    let stateFile: RestoreResult['stateFile'] = 'none';
    let t2 = t1;
    try {
      if (hits > 0) {
        const fetched = await pool(this.#o.concurrency ?? 8, hits, async (i) => {
          try {
            const into = this.#takeBuffer();
            const v = await this.#o.warehouse.get(keys[i]!, into === undefined ? { signal } : { signal, into });
            if (into !== undefined && v?.buffer !== into.buffer) values.push(into);
            if (v === undefined) return new Error(`block ${i} vanished after the lookup`);
            values.push(v);
            bytesFetched += v.length;
            const f = decodeBlock(v, { fingerprint: this.#o.fingerprint, blockIndex: i, firstToken: i * B, tokens: tokens.slice(i * B, (i + 1) * B) as unknown as number[] });
            await stage(i, f);
            return f;
          } catch (err) {
            if (!isTwError(err)) throw err;
            return err;
          }
        });
        // The leading run of blocks that verified (and share one layout) is usable.
        for (const f of fetched) {
          if (f instanceof Error) {
            fallback(`${f.message}; using the ${payloads.length} verified leading blocks`, f);
            break;
          }
          layout ??= f.header.layout;
          this.#layout ??= f.header.layout;
          if (!sameLayout(f.header.layout, layout)) {
            fallback(`block ${payloads.length} has another layout`);
            break;
          }
          payloads.push(f.payload);
        }
      }
      t2 = performance.now();
      if (payloads.length > 0 && layout !== undefined) {
        try {
          const staged = await staging?.catch(() => undefined);
          await staged?.close();
          // The streamed file is the state only when every looked-up block went into it; with a
          // transposed V, a staging error or fewer verified blocks, gather the verified ones.
          stateFile = 'streamed';
          if (staged === undefined || stagingError !== undefined || payloads.length !== hits || staged.blocksWritten !== hits) {
            stateFile = 'gathered';
            const parts = assembleStateFile(layout, payloads, payloads.map(() => B));
            const fh = await open(path, 'w');
            try {
              await fh.writev(parts);
            } finally {
              await fh.close();
            }
          }
          await sequence.loadStateFromFile(path, { acceptRisk: true });
          restoredTokens = payloads.length * B;
        } catch (err) {
          fallback(`load failed: ${(err as Error).message}`, err);
          await sequence.clearHistory();
          restoredTokens = 0;
          stateFile = 'none';
        }
      }
    } finally {
      await staging?.then((f) => f.close()).catch(() => undefined);
      await file.release();
    }
    // The state file is written (or the restore fell back): no view of the fetched values is used
    // any more. Values that arrived in buffers of their own seed the pool with the block size.
    this.#keepBuffers(values);
    const t3 = performance.now();
    const next = await evaluateForNext(sequence, tokens.slice(restoredTokens));
    const t4 = performance.now();
    return {
      ...next,
      source: restoredTokens > 0 ? 'warehouse' : 'prefill',
      restoredTokens,
      evaluatedTokens: tokens.length - restoredTokens,
      bytesFetched,
      stateFile,
      ...(fallbackReason === undefined ? {} : { fallbackReason }),
      timings: { lookupMs: t1 - t0, fetchMs: t2 - t1, loadMs: t3 - t2, evaluateMs: t4 - t3 },
    };
  }
}
