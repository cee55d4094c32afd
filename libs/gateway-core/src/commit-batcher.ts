import { isTwError } from '@tw/errors';
import type { BlockCommitMsg, CommitResultMsg } from '@tw/rpc';
import type { GatewayCoordinator } from './coordinator.js';
import { gatewayErrors } from './errors.js';
import { COMMIT_INFLIGHT_MAX } from './limits.js';

interface Pending {
  readonly block: BlockCommitMsg;
  readonly resolve: (r: CommitResultMsg) => void;
  readonly reject: (e: Error) => void;
}

/**
 * Gathers block commits per namespace into one commitBlocks call: a batch leaves when it reaches
 * `batchMax` records or `windowMs` after its first record, whichever comes first. One call per
 * namespace is in flight at a time (so commits of one key apply in the order they were made),
 * at most COMMIT_INFLIGHT_MAX in all; while a call is out the next batch grows (group commit,
 * bounded by the DRAM tier that holds every uncommitted block). Each call carries a request id (gateway id, sequence), so
 * the coordinator client's retries are idempotent.
 */
export class CommitBatcher {
  readonly #queues = new Map<string, Pending[]>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #ready: string[] = [];
  readonly #busy = new Set<string>();
  #inflight = 0;
  #seq = 0;

  constructor(
    private readonly coordinator: GatewayCoordinator,
    private readonly clientId: string,
    private readonly windowMs: number,
    private readonly batchMax: number,
    private readonly onBatch: (records: number) => void,
  ) {}

  commit(namespace: string, block: BlockCommitMsg): Promise<CommitResultMsg> {
    return new Promise<CommitResultMsg>((resolve, reject) => {
      let q = this.#queues.get(namespace);
      if (q === undefined) {
        q = [];
        this.#queues.set(namespace, q);
      }
      q.push({ block, resolve, reject });
      if (q.length >= this.batchMax) this.#seal(namespace);
      else if (!this.#timers.has(namespace)) {
        const t = setTimeout(() => this.#seal(namespace), this.windowMs);
        this.#timers.set(namespace, t);
      }
    });
  }

  #seal(namespace: string): void {
    const t = this.#timers.get(namespace);
    if (t !== undefined) clearTimeout(t);
    this.#timers.delete(namespace);
    if (!this.#ready.includes(namespace)) this.#ready.push(namespace);
    this.#pump();
  }

  #pump(): void {
    // One call per namespace at a time: a later put of a key must never be applied before an
    // earlier one, and concurrent calls may be applied in any order. Namespaces go in parallel.
    for (let i = 0; i < this.#ready.length && this.#inflight < COMMIT_INFLIGHT_MAX; ) {
      const ns = this.#ready[i]!;
      if (this.#busy.has(ns)) {
        i++;
        continue;
      }
      this.#ready.splice(i, 1);
      const q = this.#queues.get(ns);
      if (q === undefined || q.length === 0) continue;
      const batch = q.splice(0, this.batchMax);
      if (q.length === 0) this.#queues.delete(ns);
      else this.#ready.push(ns);
      this.#inflight++;
      this.#busy.add(ns);
      void this.#send(ns, batch).finally(() => {
        this.#inflight--;
        this.#busy.delete(ns);
        // Records that arrived during the call leave at once (they already waited).
        if (this.#queues.get(ns)?.length && !this.#ready.includes(ns)) this.#seal(ns);
        else this.#pump();
      });
    }
  }

  async #send(namespace: string, batch: Pending[]): Promise<void> {
    this.onBatch(batch.length);
    try {
      const res = await this.coordinator.call('commitBlocks', {
        namespace,
        blocks: batch.map((p) => p.block),
        requestId: { clientId: this.clientId, seq: String(++this.#seq) },
        token: '',
      });
      batch.forEach((p, i) => {
        const r = res.results[i];
        if (r === undefined) p.reject(gatewayErrors.create('TW_GATEWAY_COMMIT_FAILED', `the coordinators answered ${res.results.length} results for ${batch.length} commits`));
        else p.resolve(r);
      });
    } catch (err) {
      const e = gatewayErrors.create('TW_GATEWAY_COMMIT_FAILED', `commit of ${batch.length} blocks failed: ${(err as Error).message}`, {
        cause: err,
        details: isTwError(err) ? { code: err.code } : {},
      });
      for (const p of batch) p.reject(e);
    }
  }

  /** Fails everything still queued (on close). */
  failAll(err: Error): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const q of this.#queues.values()) for (const p of q) p.reject(err);
    this.#queues.clear();
    this.#ready.length = 0;
  }
}
