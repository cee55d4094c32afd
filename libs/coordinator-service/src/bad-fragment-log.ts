/**
 * Bad-fragment reports from the gateways' read paths (missing, corrupt, unreachable, ...), kept
 * for repair and for operators, bounded in entries.
 *
 * Not Raft-replicated, on purpose: a report is a hint, not state. The fragment's truth is on its
 * storage node (scrub re-reads it, a read re-reports it), and losing the list on a leader change
 * costs at most a delay: the next degraded read reports the same fragment again to the new
 * leader. Replicating every report would put read-path noise (a node that restarts makes every
 * read report `unreachable`) into the Raft log that the block map's real commits share.
 */

export interface BadFragmentEntry {
  readonly namespace: string;
  readonly key: Buffer;
  readonly version: bigint;
  readonly index: number;
  readonly nodeId: string;
  /** Reason of the latest report. */
  reason: string;
  detail: string;
  /** Reports of this fragment (each may stand for several deduplicated sightings). */
  count: number;
  /** Gateways that reported it, at most a few. */
  readonly gateways: Set<string>;
  readonly firstSeenMs: number;
  lastSeenMs: number;
}

export interface BadFragmentInput {
  readonly namespace: string;
  readonly key: Buffer;
  readonly version: bigint;
  readonly index: number;
  readonly nodeId: string;
  readonly reason: string;
  readonly detail: string;
  readonly count: number;
}

const GATEWAYS_PER_ENTRY_MAX = 4;

/** An LRU of bad fragments by (namespace, key, version, index, node), with running totals. */
export class BadFragmentLog {
  readonly #entries = new Map<string, BadFragmentEntry>();
  readonly #totals = new Map<string, number>();
  #droppedByGateways = 0;
  #evicted = 0;

  constructor(
    readonly entriesMax: number,
    private readonly nowMs: () => number,
  ) {}

  /** Records reports; returns the entries that were new (for logging). */
  record(gatewayId: string, reports: readonly BadFragmentInput[], droppedByGateway: number): BadFragmentEntry[] {
    this.#droppedByGateways += droppedByGateway;
    const fresh: BadFragmentEntry[] = [];
    const now = this.nowMs();
    for (const r of reports) {
      this.#totals.set(r.reason, (this.#totals.get(r.reason) ?? 0) + r.count);
      const id = `${r.namespace}\u0000${r.key.toString('hex')}\u0000${r.version}\u0000${r.index}\u0000${r.nodeId}`;
      let e = this.#entries.get(id);
      if (e === undefined) {
        e = { namespace: r.namespace, key: r.key, version: r.version, index: r.index, nodeId: r.nodeId, reason: r.reason, detail: r.detail, count: 0, gateways: new Set(), firstSeenMs: now, lastSeenMs: now };
        fresh.push(e);
      } else {
        this.#entries.delete(id); // re-insert: most recently seen last
      }
      e.reason = r.reason;
      e.detail = r.detail;
      e.count += r.count;
      e.lastSeenMs = now;
      if (e.gateways.size < GATEWAYS_PER_ENTRY_MAX) e.gateways.add(gatewayId);
      this.#entries.set(id, e);
      while (this.#entries.size > this.entriesMax) {
        this.#entries.delete(this.#entries.keys().next().value!);
        this.#evicted++;
      }
    }
    return fresh;
  }

  /** Most recently seen first, at most `limit`. */
  list(limit: number): BadFragmentEntry[] {
    const out: BadFragmentEntry[] = [];
    const all = [...this.#entries.values()];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) out.push(all[i]!);
    return out;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Reports received by reason (sightings, deduplicated counts included), since start. */
  totals(): ReadonlyMap<string, number> {
    return this.#totals;
  }

  /** Reports the gateways dropped before sending (their queues were full). */
  get droppedByGateways(): number {
    return this.#droppedByGateways;
  }

  /** Entries pushed out by newer ones (the list is bounded). */
  get evicted(): number {
    return this.#evicted;
  }
}
