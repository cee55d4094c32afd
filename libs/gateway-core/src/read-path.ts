import { FRAGMENT_HEADER_BYTES, checksum64, checksum64Parts, fragmentsNeeded, keyHash64 } from '@tw/block-format';
import { type ErasureCodec, createCodec } from '@tw/erasure';
import { isTwError } from '@tw/errors';
import { aborted, type ByteBudget } from './byte-budget.js';
import type { BufferPool } from './buffer-pool.js';
import { gatewayErrors } from './errors.js';
import { RECONSTRUCT_COMBINATIONS_MAX } from './limits.js';
import type { PeerPool } from './peer-pool.js';
import type { GatewayRecord } from './record.js';

/** Why a fragment was not used. */
export type BadFragmentReason = 'missing' | 'corrupt' | 'unreachable' | 'error' | 'inconsistent';

/** A fragment the read path could not use: for repair (the coordinators' report RPC comes later). */
export interface BadFragment {
  readonly namespace: string;
  readonly key: Buffer;
  readonly version: bigint;
  readonly index: number;
  readonly nodeId: string;
  readonly reason: BadFragmentReason;
  readonly error?: Error;
}

export interface ReadContext {
  readonly peers: PeerPool;
  readonly addressOf: (nodeId: string) => string | undefined;
  readonly pool: BufferPool;
  readonly inflight: ByteBudget;
  /** Current hedging deadline in ms. */
  readonly hedgeMs: () => number;
  readonly fragmentTimeoutMs: number;
  readonly onBadFragment: (f: BadFragment) => void;
  readonly onFragmentRead: (latencyMs: number, bytes: number) => void;
  /** A read passed its hedging deadline and started extra (parity) reads. */
  readonly onHedge: () => void;
  readonly nowMs: () => number;
  /**
   * Read repair, optional: after a degraded read reassembled a block that verifies, the fragments
   * found missing, corrupt or inconsistent are rebuilt and handed to `write` (best effort, in the
   * background). `tryAcquire` bounds the repairs in flight: when it says no, nothing is rebuilt.
   */
  readonly readRepair?: {
    tryAcquire(): boolean;
    release(): void;
    write(record: GatewayRecord, index: number, bytes: Buffer): Promise<void>;
  };
}

export interface ReadOutcome {
  readonly payload: Buffer;
  /** True when parity was used or a fragment was bad (missing, corrupt, unreachable, inconsistent). */
  readonly degraded: boolean;
}

/**
 * A block handed out as the verified data fragments themselves (no assembly copy): `parts`,
 * concatenated, are the payload. They live in pooled buffers that the caller owns until it calls
 * `release()` exactly once (after the bytes were written out).
 */
export interface BlockParts {
  readonly parts: Buffer[];
  readonly sizeBytes: number;
  readonly degraded: boolean;
  release(): void;
}

/**
 * Like readBlock, but when the k data fragments all arrive intact (the common case) the block is
 * returned as those fragments, verified against the block checksum over the parts, with no copy
 * into one buffer. A degraded read (parity used, or a bad fragment) is reconstructed into a fresh
 * buffer as readBlock does, and returned as one part.
 */
export async function readBlockParts(ctx: ReadContext, record: GatewayRecord, signal: AbortSignal | undefined): Promise<BlockParts> {
  let parts: BlockParts | undefined;
  const out = await readBlock(ctx, record, undefined, signal, (fragments, pooled, shard) => {
    const views: Buffer[] = [];
    for (let i = 0; i < fragments.length; i++) {
      const len = Math.min(shard, record.sizeBytes - i * shard);
      if (len <= 0) break;
      views.push(fragments[i]!.subarray(0, len));
    }
    // Data fragments are the payload cut in k shards (the last one padded): the same checksum
    // readBlock checks on the assembled copy, over the pieces. A mismatch falls back to it.
    if (checksum64Parts(views) !== record.checksum) return false;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const b of pooled) ctx.pool.give(b);
    };
    parts = { parts: views, sizeBytes: record.sizeBytes, degraded: false, release };
    return true;
  });
  if (out === undefined) return parts!;
  return { parts: [out.payload], sizeBytes: out.payload.length, degraded: out.degraded, release: () => undefined };
}

const CORRUPT_CODES = new Set(['TW_CHECKSUM_MISMATCH', 'TW_FRAGMENT_MISMATCH', 'TW_HEADER_CHECKSUM', 'TW_HEADER_INVALID', 'TW_HEADER_BAD_MAGIC', 'TW_EXTENT_CORRUPT']);
const UNREACHABLE_CODES = new Set(['TW_TRANSPORT_CONNECT_FAILED', 'TW_TRANSPORT_CONNECTION_CLOSED', 'TW_TRANSPORT_CLOSED', 'TW_GATEWAY_CLOSED']);

const codecs = new Map<string, ErasureCodec>();
export function codecFor(r: GatewayRecord['redundancy']): ErasureCodec {
  const name = r.kind === 'ec' ? `ec:${r.k}+${r.m}` : r.kind === 'replicate' ? `replicate:${r.n}` : 'none';
  let c = codecs.get(name);
  if (c === undefined) {
    c = createCodec(r);
    codecs.set(name, c);
  }
  return c;
}

/**
 * Reads one committed block: the k data fragments in parallel (into pooled buffers), each
 * checksum-verified by the fragment client; a fragment that fails, is missing, or is not back by
 * the hedging deadline is replaced by the next one (parity); the assembled payload is verified
 * against the record's checksum, and if it does not match (a fragment stored with a valid
 * checksum over wrong bytes), every fragment is read and subsets are tried until one reassembles
 * to the checksum. Never returns wrong bytes; never waits past the fragment deadline.
 *
 * `dest`, when given, must hold `record.sizeBytes`; the payload returned is then a view of it.
 */
export async function readBlock(ctx: ReadContext, record: GatewayRecord, dest: Buffer | undefined, signal: AbortSignal | undefined): Promise<ReadOutcome>;
/**
 * With `takeData`: when the k data fragments were all read intact, they (and the pooled buffers
 * holding them) are offered to `takeData` first; if it accepts them (returns true) it owns those
 * buffers and must give them back to `ctx.pool`, and readBlock resolves undefined.
 */
export async function readBlock(
  ctx: ReadContext,
  record: GatewayRecord,
  dest: Buffer | undefined,
  signal: AbortSignal | undefined,
  takeData: (fragments: readonly Buffer[], pooled: readonly Buffer[], shard: number) => boolean,
): Promise<ReadOutcome | undefined>;
export async function readBlock(
  ctx: ReadContext,
  record: GatewayRecord,
  dest: Buffer | undefined,
  signal: AbortSignal | undefined,
  takeData?: (fragments: readonly Buffer[], pooled: readonly Buffer[], shard: number) => boolean,
): Promise<ReadOutcome | undefined> {
  const codec = codecFor(record.redundancy);
  const n = codec.fragmentCount;
  const k = fragmentsNeeded(record.redundancy);
  const shard = codec.fragmentBytes(record.sizeBytes);
  const keyHash = keyHash64(record.namespace, record.key);
  const fragments: (Buffer | undefined)[] = new Array<Buffer | undefined>(n).fill(undefined);
  const held: (Buffer | undefined)[] = new Array<Buffer | undefined>(n).fill(undefined);
  const launched = new Set<number>();
  const failed = new Set<number>();
  let okCount = 0;
  let inflight = 0;
  let degraded = false;
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort(signal!.reason);
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  // Launch order: data fragments on nodes not suspect first, then parity, suspects last.
  const order = [...Array(n).keys()].sort((a, b) => rank(a) - rank(b));
  function rank(i: number): number {
    const address = ctx.addressOf(record.fragmentNodes[i]!);
    const suspect = address === undefined || ctx.peers.isSuspect(address);
    return (suspect ? 2 * n : 0) + i;
  }

  // Fragments whose node answered but held no good copy: the ones read repair rewrites.
  const repairable: number[] = [];
  const bad = (i: number, reason: BadFragmentReason, error?: Error): void => {
    degraded = true;
    if ((reason === 'missing' || reason === 'corrupt' || reason === 'inconsistent') && !repairable.includes(i)) repairable.push(i);
    ctx.onBadFragment({ namespace: record.namespace, key: record.key, version: record.version, index: i, nodeId: record.fragmentNodes[i]!, reason, ...(error === undefined ? {} : { error }) });
  };

  const launch = (i: number): void => {
    launched.add(i);
    inflight++;
    void fetchOne(i).finally(() => {
      inflight--;
      notify();
    });
  };

  const fetchOne = async (i: number): Promise<void> => {
    const nodeId = record.fragmentNodes[i]!;
    const address = ctx.addressOf(nodeId);
    if (address === undefined) {
      failed.add(i);
      bad(i, 'unreachable', gatewayErrors.create('TW_GATEWAY_BAD_RECORD', `node ${nodeId} is not in the cluster map`));
      return;
    }
    const bytes = FRAGMENT_HEADER_BYTES + shard;
    try {
      await ctx.inflight.acquire(bytes, stop.signal);
    } catch {
      // Only our own stop aborts this wait: the fragment is not bad, merely not needed (yet);
      // recoverFromAll may still want it, so it is not marked failed.
      return;
    }
    const buf = ctx.pool.take(bytes);
    let keep = false;
    const started = ctx.nowMs();
    try {
      const client = await ctx.peers.client(address, stop.signal);
      const got = await client.get(
        { namespace: record.namespace, key: record.key, version: record.version, index: i },
        { into: buf, signal: AbortSignal.any([stop.signal, AbortSignal.timeout(ctx.fragmentTimeoutMs)]) },
      );
      if (got === undefined) {
        failed.add(i);
        bad(i, 'missing');
        return;
      }
      const h = got.header;
      if (h.keyHash !== keyHash || h.payloadLength !== record.sizeBytes || h.fragmentLength !== shard) {
        failed.add(i);
        bad(i, 'corrupt', gatewayErrors.create('TW_GATEWAY_BAD_RECORD', `fragment ${i} header disagrees with the record`));
        return;
      }
      ctx.onFragmentRead(ctx.nowMs() - started, shard);
      if (stop.signal.aborted) return; // cancelled (k others arrived first), not failed
      fragments[i] = got.bytes;
      held[i] = buf;
      keep = true;
      okCount++;
    } catch (err) {
      // A read we cancelled (hedged reads beyond k) is not a bad fragment: the wrong-bytes
      // recovery below must be free to read it again.
      if (stop.signal.aborted) return;
      failed.add(i);
      const code = isTwError(err) ? err.code : '';
      if (CORRUPT_CODES.has(code)) bad(i, 'corrupt', err as Error);
      else if (UNREACHABLE_CODES.has(code)) {
        ctx.peers.failed(address, err);
        bad(i, 'unreachable', err as Error);
      } else bad(i, 'error', err as Error);
    } finally {
      if (!keep) ctx.pool.give(buf);
      ctx.inflight.release(bytes);
    }
  };

  const releaseAll = (): void => {
    for (let i = 0; i < n; i++) {
      const b = held[i];
      if (b !== undefined) ctx.pool.give(b);
      held[i] = undefined;
      fragments[i] = undefined;
    }
  };

  const waitChange = (timeoutMs: number | undefined): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      wake = () => {
        if (t !== undefined) clearTimeout(t);
        resolve(true);
      };
      if (timeoutMs !== undefined) {
        t = setTimeout(() => {
          wake = undefined;
          resolve(false);
        }, Math.max(0, timeoutMs));
      }
    });

  try {
    for (const i of order.slice(0, k)) launch(i);
    const hedgeAt = ctx.nowMs() + ctx.hedgeMs();
    let hedged = false;
    // Bounded: every wake-up settles or launches a fragment, or passes the one hedge deadline.
    while (okCount < k) {
      if (signal?.aborted) throw aborted(signal);
      const unlaunched = order.filter((i) => !launched.has(i));
      // Replace failures at once: keep k reads alive while fragments remain.
      let short = k - okCount - inflight;
      for (const i of unlaunched) {
        if (short <= 0) break;
        launch(i);
        short--;
      }
      if (inflight === 0) break;
      const now = ctx.nowMs();
      if (!hedged && now >= hedgeAt) {
        hedged = true;
        ctx.onHedge();
        // Late data: start as many more reads as are outstanding.
        let extra = k - okCount;
        for (const i of order.filter((j) => !launched.has(j))) {
          if (extra <= 0) break;
          launch(i);
          extra--;
        }
        continue;
      }
      await waitChange(hedged ? undefined : hedgeAt - now);
    }
    if (signal?.aborted) throw aborted(signal);
    if (okCount < k) {
      throw gatewayErrors.create(
        'TW_GATEWAY_BLOCK_UNAVAILABLE',
        `block ${record.namespace}/${hexKey(record.key)} v${record.version}: only ${okCount} of ${n} fragments readable, ${k} needed`,
        { details: { namespace: record.namespace, version: String(record.version), readable: okCount, needed: k, fragments: n } },
      );
    }
    stop.abort();
    const used = usedSet(fragments, k);
    const present = fragments.map((f, i) => (f !== undefined && used.has(i) ? f : undefined));
    if ([...used].some((i) => i >= k)) degraded = true;
    if (takeData !== undefined && !degraded && present.slice(0, k).every((f) => f !== undefined)) {
      const data = present.slice(0, k) as Buffer[];
      const buffers = held.slice(0, k) as Buffer[];
      if (takeData(data, buffers, shard)) {
        // Ownership of the k pooled buffers moved to takeData; releaseAll must not give them back.
        for (let i = 0; i < k; i++) held[i] = undefined;
        return undefined;
      }
    }
    const out = dest ?? Buffer.allocUnsafe(Math.max(record.sizeBytes, shard * k));
    const payload = await codec.reconstruct(present, record.sizeBytes, { dest: out, ...(signal === undefined ? {} : { signal }) });
    if (checksum64(payload) === record.checksum) {
      await startRepair(present);
      return { payload, degraded };
    }
    // Wrong bytes under valid fragment checksums: read everything and find a consistent subset.
    return { payload: await recoverFromAll(), degraded: true };
  } finally {
    signal?.removeEventListener('abort', onOuterAbort);
    if (!stop.signal.aborted) stop.abort();
    releaseAll();
  }

  /** Rebuilds the repairable fragments from `sources` (k verified ones) and writes them in the background. */
  async function startRepair(sources: readonly (Buffer | undefined)[]): Promise<void> {
    const repair = ctx.readRepair;
    if (repair === undefined || repairable.length === 0 || signal?.aborted || !repair.tryAcquire()) return;
    let rebuilt: Buffer[];
    try {
      rebuilt = await codec.rebuildFragments(sources, record.sizeBytes, repairable);
    } catch {
      repair.release();
      return;
    }
    const writes = repairable.map((i, j) => (rebuilt[j]!.length === shard ? repair.write(record, i, rebuilt[j]!).catch(() => undefined) : Promise.resolve()));
    void Promise.all(writes).finally(() => repair.release());
  }

  async function recoverFromAll(): Promise<Buffer> {
    // Re-arm: the first phase aborted its controller.
    const again = new AbortController();
    const onAbort2 = (): void => again.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort2, { once: true });
    try {
      const rest = order.filter((i) => fragments[i] === undefined && !failed.has(i));
      await Promise.all(rest.map((i) => fetchOneWith(i, again.signal)));
    } finally {
      signal?.removeEventListener('abort', onAbort2);
    }
    const have = [...Array(n).keys()].filter((i) => fragments[i] !== undefined);
    let tried = 0;
    for (const combo of combinations(have, k)) {
      if (++tried > RECONSTRUCT_COMBINATIONS_MAX) break;
      if (signal?.aborted) throw aborted(signal);
      const subset = fragments.map((f, i) => (combo.includes(i) ? f : undefined));
      const out = dest ?? Buffer.allocUnsafe(Math.max(record.sizeBytes, shard * k));
      const payload = await codec.reconstruct(subset, record.sizeBytes, { dest: out });
      if (checksum64(payload) !== record.checksum) continue;
      // Found a consistent subset: the others that disagree with it are bad.
      const others = have.filter((i) => !combo.includes(i));
      if (others.length > 0) {
        const rebuilt = await codec.rebuildFragments(subset, record.sizeBytes, others);
        others.forEach((i, j) => {
          if (!rebuilt[j]!.equals(fragments[i]!)) bad(i, 'inconsistent');
        });
      }
      return payload;
    }
    throw gatewayErrors.create('TW_GATEWAY_BLOCK_CORRUPT', `block ${record.namespace}/${hexKey(record.key)} v${record.version}: no ${k} of the ${have.length} readable fragments reassemble to its checksum`, {
      details: { namespace: record.namespace, version: String(record.version), readable: have.length, needed: k },
    });
  }

  async function fetchOneWith(i: number, s: AbortSignal): Promise<void> {
    // Same as fetchOne, under a fresh signal (the first phase's one is aborted).
    const nodeId = record.fragmentNodes[i]!;
    const address = ctx.addressOf(nodeId);
    launched.add(i);
    if (address === undefined) {
      failed.add(i);
      return;
    }
    const bytes = FRAGMENT_HEADER_BYTES + shard;
    await ctx.inflight.acquire(bytes, s);
    const buf = ctx.pool.take(bytes);
    let keep = false;
    try {
      const client = await ctx.peers.client(address, s);
      const got = await client.get({ namespace: record.namespace, key: record.key, version: record.version, index: i }, { into: buf, signal: AbortSignal.any([s, AbortSignal.timeout(ctx.fragmentTimeoutMs)]) });
      if (got === undefined || got.header.keyHash !== keyHash || got.header.payloadLength !== record.sizeBytes) {
        failed.add(i);
        bad(i, got === undefined ? 'missing' : 'corrupt');
        return;
      }
      fragments[i] = got.bytes;
      held[i] = buf;
      keep = true;
    } catch (err) {
      failed.add(i);
      bad(i, CORRUPT_CODES.has(isTwError(err) ? err.code : '') ? 'corrupt' : 'error', err as Error);
    } finally {
      if (!keep) ctx.pool.give(buf);
      ctx.inflight.release(bytes);
    }
  }
}

/** The first k present indexes (reconstruct wants exactly the sources it uses). */
function usedSet(fragments: readonly (Buffer | undefined)[], k: number): Set<number> {
  const s = new Set<number>();
  for (let i = 0; i < fragments.length && s.size < k; i++) if (fragments[i] !== undefined) s.add(i);
  return s;
}

function* combinations(items: readonly number[], k: number): Generator<number[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  if (k > items.length) return;
  for (;;) {
    yield idx.map((i) => items[i]!);
    let j = k - 1;
    while (j >= 0 && idx[j] === items.length - k + j) j--;
    if (j < 0) return;
    idx[j]!++;
    for (let t = j + 1; t < k; t++) idx[t] = idx[t - 1]! + 1;
  }
}

function hexKey(key: Buffer): string {
  const s = key.toString('latin1');
  return /^[\x20-\x7e]*$/.test(s) ? s.slice(0, 80) : key.subarray(0, 40).toString('hex');
}
