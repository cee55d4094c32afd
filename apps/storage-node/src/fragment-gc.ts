import { assert } from '@tw/errors';
import { type FragmentId, decodeFragmentId } from '@tw/fragment-protocol';

/**
 * Storage-node garbage collection of fragments no block record names (ARCHITECTURE.md section 3,
 * docs/storage-node.md "Garbage collection"): orphans of writes whose commit never happened (a
 * gateway died between its fragment writes and its commit), versions superseded by a newer PUT
 * and versions deleted, once the coordinators purged them, and stale copies after a fragment
 * moved to another node.
 *
 * A pass lists the store's fragments, skips those younger than the grace period, asks the
 * coordinators about the rest in batches (CheckFragments, a linearizable read of the block map)
 * and deletes the ones answered `dead`. It never deletes on `unknown`, on an error, or when the
 * coordinators' view of this node's identity changed (see `identity`).
 *
 * Why the grace period makes racing a commit safe: a fragment is eligible only once it is older
 * than `graceMs` by this node's clock, and its check is sent after that. A gateway commits after
 * its fragment writes were acknowledged, so a commit that completes within `graceMs` of the
 * write completes before the check is sent, and the check, being linearizable, sees it.
 *
 * Age without a timestamp in the record format: the extent store's sequence numbers only grow,
 * so a sample (time t, lastSeq h) says every record with seq <= h was written by t. The sweep
 * samples at start-up and at every pass; a fragment is older than the grace period when its seq
 * is at or below the newest sample taken at least `graceMs` ago. After a restart the samples are
 * gone and the first one covers everything on disk, so nothing is deleted until `graceMs` after
 * the restart: conservative, never wrong.
 */

/** The store operations the sweep needs (ExtentStore has them). */
export interface GcStore {
  list(options: { after?: Uint8Array; limit: number }): Promise<{ entries: { id: Buffer; sizeBytes: number; seq: number }[]; next?: Buffer }>;
  /** With `ifSeq`: deletes only if the id's newest record, in flight ones included, is that put. */
  delete(id: Uint8Array, options: { ifSeq: number }): Promise<boolean>;
  readonly lastSeq: number;
}

export type Liveness = 'live' | 'dead' | 'unknown';

/** Asks the coordinators about fragments stored on this node; throws on any failure. */
export type LivenessCheck = (fragments: readonly FragmentId[], signal: AbortSignal) => Promise<{ liveness: readonly Liveness[]; nodeRegisteredAtMs: number }>;

/** Where the node remembers which cluster incarnation its data belongs to. */
export interface GcIdentityStore {
  load(): { nodeId: string; registeredAtMs: number } | undefined;
  save(identity: { nodeId: string; registeredAtMs: number }): void;
}

export interface FragmentGcOptions {
  readonly nodeId: string;
  /** Fragments younger than this are never checked (far above a gateway's write + commit time). */
  readonly graceMs: number;
  /** Time between the end of a pass and the start of the next. */
  readonly intervalMs: number;
  /** Fragments per CheckFragments call (at most 1,024, the coordinators' bound). */
  readonly batchSize: number;
  /** Fragments checked per second at most (throttle: sleeps between batches). */
  readonly checksPerSecondMax: number;
}

export interface FragmentGcComponents {
  readonly store: GcStore;
  readonly check: LivenessCheck;
  readonly identity: GcIdentityStore;
  readonly nowMs: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** True while foreground traffic is heavy: the sweep waits (bounded) before each batch. */
  readonly busy?: () => boolean;
  readonly logger: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

export interface GcPassResult {
  scanned: number;
  young: number;
  undecodable: number;
  checked: number;
  live: number;
  dead: number;
  unknown: number;
  deleted: number;
  deletedBytes: number;
  /** Dead when checked, but rewritten (or gone) before the delete: kept. */
  raced: number;
  /** Set when the pass stopped early (error, identity change, stop). */
  aborted?: string;
}

export interface GcCounters extends Omit<GcPassResult, 'aborted'> {
  passes: number;
  passesAborted: number;
  errors: number;
  busyWaits: number;
}

/** Samples kept (one per pass, plus the start-up one); older ones are merged away. */
const SAMPLES_MAX = 4096;
/** Page size of store listings (the extent store allows up to 1,000). */
const LIST_PAGE = 1000;
const BUSY_WAIT_MS = 1000;
/** A batch waits at most this many busy periods, then goes anyway (GC must not starve forever). */
const BUSY_WAITS_PER_BATCH_MAX = 30;

export class FragmentGc {
  readonly #o: FragmentGcOptions;
  readonly #c: FragmentGcComponents;
  /** (time, lastSeq) samples, oldest first. */
  readonly #samples: { tMs: number; seq: number }[] = [];
  #disabled: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<GcPassResult> | undefined;
  readonly #stop = new AbortController();
  readonly #counters: GcCounters = { passes: 0, passesAborted: 0, errors: 0, busyWaits: 0, scanned: 0, young: 0, undecodable: 0, checked: 0, live: 0, dead: 0, unknown: 0, deleted: 0, deletedBytes: 0, raced: 0 };

  constructor(options: FragmentGcOptions, components: FragmentGcComponents) {
    assert(options.batchSize >= 1 && options.batchSize <= 1024 && options.graceMs >= 0 && options.checksPerSecondMax > 0, 'fragment GC options out of range');
    this.#o = options;
    this.#c = components;
    let known: { nodeId: string; registeredAtMs: number } | undefined;
    try {
      known = components.identity.load();
    } catch (err) {
      this.#disabled = `cannot read the GC identity: ${(err as Error).message}`;
      components.logger.error({ err: (err as Error).message }, 'fragment GC disabled: unreadable identity file');
    }
    if (known !== undefined && known.nodeId !== options.nodeId) {
      this.#disabled = `this data folder belongs to node ${known.nodeId}, not ${options.nodeId}`;
      components.logger.error({ storedNodeId: known.nodeId, nodeId: options.nodeId }, 'fragment GC disabled: node id changed for this data folder');
    }
    this.sample();
  }

  /** Why the sweep refuses to run, if it does. */
  get disabled(): string | undefined {
    return this.#disabled;
  }

  counters(): Readonly<GcCounters> {
    return this.#counters;
  }

  /** Notes (now, lastSeq): every record at or below lastSeq was written by now. */
  sample(): void {
    const now = this.#c.nowMs();
    const seq = this.#c.store.lastSeq;
    const last = this.#samples[this.#samples.length - 1];
    if (last !== undefined && (last.tMs > now || last.seq > seq)) return; // a clock step back: keep the older, safe samples
    this.#samples.push({ tMs: now, seq });
    // Keep only the newest sample at least graceMs old, and the newer ones.
    const cutoff = now - this.#o.graceMs;
    let firstUseful = 0;
    for (let i = 0; i < this.#samples.length; i++) if (this.#samples[i]!.tMs <= cutoff) firstUseful = i;
    if (firstUseful > 0) this.#samples.splice(0, firstUseful);
    if (this.#samples.length > SAMPLES_MAX) this.#samples.splice(1, 1); // coarser, still safe
  }

  /** Fragments with a seq at or below this are older than the grace period; -1: none is. */
  #eligibleSeq(now: number): number {
    let seq = -1;
    for (const s of this.#samples) if (s.tMs <= now - this.#o.graceMs) seq = s.seq;
    return seq;
  }

  /** Starts the periodic passes (the first after one interval). */
  start(): void {
    const loop = (): void => {
      if (this.#stop.signal.aborted) return;
      this.#timer = setTimeout(() => {
        void this.runOnce().finally(loop);
      }, this.#o.intervalMs);
      this.#timer.unref?.();
    };
    loop();
  }

  /** Stops the timer and any pass in flight (between batches; a delete in progress completes). */
  async stop(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  /** One pass (a second call while one runs joins it). */
  runOnce(): Promise<GcPassResult> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<GcPassResult> {
    const r: GcPassResult = { scanned: 0, young: 0, undecodable: 0, checked: 0, live: 0, dead: 0, unknown: 0, deleted: 0, deletedBytes: 0, raced: 0 };
    const signal = this.#stop.signal;
    this.sample();
    const started = this.#c.nowMs();
    try {
      if (this.#disabled !== undefined) throw new GcAbort(`disabled: ${this.#disabled}`);
      const eligible = this.#eligibleSeq(started);
      if (eligible < 0) return r;
      let batch: { id: FragmentId; raw: Buffer; seq: number; sizeBytes: number }[] = [];
      let after: Buffer | undefined;
      for (;;) {
        if (signal.aborted) throw new GcAbort('stopped');
        const page = await this.#c.store.list({ limit: LIST_PAGE, ...(after === undefined ? {} : { after }) });
        for (const e of page.entries) {
          r.scanned++;
          if (e.seq > eligible) {
            r.young++;
            continue;
          }
          let id: FragmentId;
          try {
            id = decodeFragmentId(e.id);
          } catch {
            r.undecodable++; // not ours to judge: never deleted
            continue;
          }
          batch.push({ id, raw: e.id, seq: e.seq, sizeBytes: e.sizeBytes });
          if (batch.length >= this.#o.batchSize) {
            await this.#checkBatch(batch, r, signal);
            batch = [];
          }
        }
        if (page.next === undefined) break;
        after = page.next;
      }
      if (batch.length > 0) await this.#checkBatch(batch, r, signal);
      return r;
    } catch (err) {
      r.aborted = err instanceof GcAbort ? err.message : `error: ${(err as Error).message}`;
      if (!(err instanceof GcAbort)) this.#counters.errors++;
      return r;
    } finally {
      this.#counters.passes++;
      if (r.aborted !== undefined) this.#counters.passesAborted++;
      for (const k of ['scanned', 'young', 'undecodable', 'checked', 'live', 'dead', 'unknown', 'deleted', 'deletedBytes', 'raced'] as const) this.#counters[k] += r[k];
      const log = { ...r, ms: this.#c.nowMs() - started };
      if (r.aborted !== undefined && !r.aborted.startsWith('stopped')) this.#c.logger.warn(log, 'fragment GC pass stopped early; nothing was deleted on doubt');
      else if (r.scanned > 0 || r.deleted > 0) this.#c.logger.info(log, 'fragment GC pass');
    }
  }

  async #checkBatch(batch: { id: FragmentId; raw: Buffer; seq: number; sizeBytes: number }[], r: GcPassResult, signal: AbortSignal): Promise<void> {
    const t0 = this.#c.nowMs();
    for (let waits = 0; this.#c.busy?.() === true && waits < BUSY_WAITS_PER_BATCH_MAX; waits++) {
      this.#counters.busyWaits++;
      await this.#c.sleep(BUSY_WAIT_MS, signal);
    }
    if (signal.aborted) throw new GcAbort('stopped');
    const res = await this.#c.check(
      batch.map((b) => b.id),
      signal,
    );
    if (res.liveness.length !== batch.length) throw new GcAbort(`coordinators answered ${res.liveness.length} of ${batch.length} fragments`);
    if (res.nodeRegisteredAtMs === 0) {
      // Not a member of the cluster map (not registered yet, or removed): no answer is usable.
      r.checked += batch.length;
      r.unknown += batch.length;
      throw new GcAbort('this node is not in the cluster map');
    }
    this.#checkIdentity(res.nodeRegisteredAtMs);
    r.checked += batch.length;
    for (let i = 0; i < batch.length; i++) {
      const l = res.liveness[i];
      if (l === 'live') r.live++;
      else if (l === 'dead') {
        r.dead++;
        const b = batch[i]!;
        // Rewritten since it was listed (repair, a retried write): not the fragment that was judged.
        // The delete is conditional on the judged version, checked by the store when it reserves
        // the tombstone, so a re-put still being written or synced is not removed with it.
        if (await this.#c.store.delete(b.raw, { ifSeq: b.seq })) {
          r.deleted++;
          r.deletedBytes += b.sizeBytes;
        } else r.raced++;
      } else r.unknown++;
    }
    // Throttle: a batch of n takes at least n / checksPerSecondMax seconds.
    const minMs = (batch.length * 1000) / this.#o.checksPerSecondMax;
    const spent = this.#c.nowMs() - t0;
    if (spent < minMs) await this.#c.sleep(minMs - spent, signal);
  }

  /**
   * The node's registration time in the cluster map names the cluster incarnation its data was
   * written for. A different one means the coordinators' block map is not the one these
   * fragments were committed to (coordinators rebuilt from scratch, a node id reused): every
   * fragment would look dead, so the sweep refuses to run until an operator looks.
   */
  #checkIdentity(registeredAtMs: number): void {
    const known = this.#c.identity.load();
    if (known === undefined) {
      this.#c.identity.save({ nodeId: this.#o.nodeId, registeredAtMs });
      return;
    }
    if (known.registeredAtMs !== registeredAtMs) {
      this.#disabled = `the cluster map registered node ${this.#o.nodeId} at ${registeredAtMs}, this data folder was written for a registration at ${known.registeredAtMs}`;
      this.#c.logger.error({ stored: known.registeredAtMs, reported: registeredAtMs }, 'fragment GC disabled: the coordinators know this node from a different cluster incarnation; remove gc-identity.json after checking');
      throw new GcAbort(`disabled: ${this.#disabled}`);
    }
  }
}

class GcAbort extends Error {}
