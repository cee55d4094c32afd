import type { BadFragmentReportMsg, ReportBadFragmentsRequestMsg } from '@tw/rpc';
import { BAD_FRAGMENT_BATCH_MAX, BAD_FRAGMENT_QUEUE_MAX_DEFAULT, BAD_FRAGMENT_REPORT_INTERVAL_MS_DEFAULT } from './limits.js';
import type { BadFragment } from './read-path.js';

export interface BadFragmentReporterOptions {
  readonly gatewayId: string;
  /** Distinct fragments queued at most; reports past it are dropped (and counted). */
  readonly queueMax?: number;
  /** At most one call to the coordinators per interval (ms). */
  readonly intervalMs?: number;
  /** Deadline of one report call, retries included (ms). */
  readonly sendTimeoutMs?: number;
}

export interface BadFragmentReporterStats {
  /** Distinct fragments waiting to be sent. */
  queued: number;
  /** Reports (distinct fragments) the coordinators accepted. */
  sent: number;
  /** Sightings dropped because the queue was full. */
  dropped: number;
  /** Reports lost with a call that failed. */
  failed: number;
  calls: number;
}

type Send = (request: ReportBadFragmentsRequestMsg, signal: AbortSignal) => Promise<unknown>;

const DETAIL_CHARS_MAX = 256;
const CLOSE_SEND_TIMEOUT_MS = 1000;

/**
 * Batches the read path's bad-fragment sightings for the coordinators (ARCHITECTURE.md section 4,
 * read step 3): deduplicated by (namespace, key, version, index, node) while queued, bounded in
 * distinct fragments, sent at most once per interval with one call in flight. `report()` never
 * blocks and never throws: a full queue drops the sighting and counts it (the count travels with
 * the next call), a failed call loses its batch (counted): reads that meet the fragment again
 * will report it again. Reports are hints for repair, not state.
 */
export class BadFragmentReporter {
  readonly #queue = new Map<string, BadFragmentReportMsg>();
  readonly #send: Send;
  readonly #nowMs: () => number;
  readonly #gatewayId: string;
  readonly #queueMax: number;
  readonly #intervalMs: number;
  #sendTimeoutMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight: Promise<void> | undefined;
  #lastSendMs = -Infinity;
  #droppedUnsent = 0;
  #closed = false;
  readonly #stats: BadFragmentReporterStats = { queued: 0, sent: 0, dropped: 0, failed: 0, calls: 0 };

  constructor(options: BadFragmentReporterOptions, send: Send, nowMs: () => number = Date.now) {
    this.#gatewayId = options.gatewayId;
    this.#queueMax = options.queueMax ?? BAD_FRAGMENT_QUEUE_MAX_DEFAULT;
    this.#intervalMs = options.intervalMs ?? BAD_FRAGMENT_REPORT_INTERVAL_MS_DEFAULT;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 10_000;
    this.#send = send;
    this.#nowMs = nowMs;
  }

  /** Queues one sighting; O(1), never blocks, never throws. */
  report(f: BadFragment): void {
    if (this.#closed) return;
    const id = `${f.namespace}\u0000${f.key.toString('latin1')}\u0000${f.version}\u0000${f.index}\u0000${f.nodeId}`;
    const queued = this.#queue.get(id);
    if (queued !== undefined) {
      queued.count++;
      queued.reason = f.reason;
      return;
    }
    if (this.#queue.size >= this.#queueMax) {
      this.#stats.dropped++;
      this.#droppedUnsent++;
      return;
    }
    const detail = f.error === undefined ? '' : ((f.error as { code?: unknown }).code as string | undefined) ?? f.error.message;
    this.#queue.set(id, {
      namespace: f.namespace,
      key: f.key,
      version: f.version.toString(),
      index: f.index,
      nodeId: f.nodeId,
      reason: f.reason,
      detail: String(detail).slice(0, DETAIL_CHARS_MAX),
      seenAtMs: String(Math.max(0, Math.floor(this.#nowMs()))),
      count: 1,
    });
    this.#schedule();
  }

  stats(): BadFragmentReporterStats {
    return { ...this.#stats, queued: this.#queue.size };
  }

  /** Sends what is queued now (one call per BAD_FRAGMENT_BATCH_MAX), waiting for a call in flight first. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#inflight !== undefined) await this.#inflight;
    while (this.#queue.size > 0 || this.#droppedUnsent > 0) {
      this.#inflight = this.#sendBatch();
      await this.#inflight;
    }
  }

  /** Stops taking reports and sends what is queued (bounded by the send timeout). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Do not hold a shutdown for long on coordinators that are gone.
    this.#sendTimeoutMs = Math.min(this.#sendTimeoutMs, CLOSE_SEND_TIMEOUT_MS);
    await this.flush();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#inflight !== undefined || this.#closed) return;
    const wait = Math.max(0, this.#lastSendMs + this.#intervalMs - this.#nowMs());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#queue.size === 0 && this.#droppedUnsent === 0) return;
      this.#inflight = this.#sendBatch();
    }, wait);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  async #sendBatch(): Promise<void> {
    const reports: BadFragmentReportMsg[] = [];
    for (const [id, r] of this.#queue) {
      if (reports.length >= BAD_FRAGMENT_BATCH_MAX) break;
      reports.push(r);
      this.#queue.delete(id);
    }
    const dropped = this.#droppedUnsent;
    this.#droppedUnsent = 0;
    this.#lastSendMs = this.#nowMs();
    this.#stats.calls++;
    try {
      await this.#send({ gatewayId: this.#gatewayId, reports, dropped: String(dropped) }, AbortSignal.timeout(this.#sendTimeoutMs));
      this.#stats.sent += reports.length;
    } catch {
      this.#stats.failed += reports.length;
    } finally {
      this.#inflight = undefined;
      if (this.#queue.size > 0) this.#schedule();
    }
  }
}
