import { assert } from '@tw/errors';
import { ProgressState, type ProgressStatus } from './types.js';

/**
 * The MsgApp a leader has sent to one follower and not yet seen acknowledged: a ring of
 * (last index, bytes), bounded by count and by bytes (flow control).
 */
export class Inflights {
  private start = 0;
  count = 0;
  bytes = 0;
  private readonly indexes: number[];
  private readonly sizes: number[];

  constructor(readonly sizeMax: number, readonly bytesMax: number) {
    assert(sizeMax > 0, 'inflight size must be positive');
    this.indexes = new Array<number>(sizeMax).fill(0);
    this.sizes = new Array<number>(sizeMax).fill(0);
  }

  add(index: number, bytes: number): void {
    assert(!this.full(), 'cannot add to full inflights');
    const next = (this.start + this.count) % this.sizeMax;
    this.indexes[next] = index;
    this.sizes[next] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `to` (acknowledged). */
  freeLE(to: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= to) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.sizeMax;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /**
   * Frees the oldest message. A leader does this when a heartbeat response shows the follower
   * alive while the window is full: the messages in it were probably lost (a follower restart
   * drops them), and nothing else would ever free a slot again (etcd v3.5 does the same).
   */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.bytes -= this.sizes[this.start]!;
    this.start = (this.start + 1) % this.sizeMax;
    this.count--;
    if (this.count === 0) this.start = 0;
  }

  full(): boolean {
    return this.count === this.sizeMax || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

/** The leader's view of one follower (etcd's tracker.Progress). */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Probe state: one MsgApp is outstanding, wait for its answer or a heartbeat response. */
  msgAppFlowPaused = false;
  /** Highest commit index sent to this follower (in MsgApp or heartbeat). */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(next: number, public isLearner: boolean, inflightMsgsMax: number, inflightBytesMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightMsgsMax, inflightBytesMax);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records that a MsgApp with `entries` entries (of `bytes`) ending at `lastIndex` was sent. */
  sentEntries(entries: number, bytes: number, lastIndex: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entries > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === ProgressState.Probe) {
      if (entries > 0) this.msgAppFlowPaused = true;
    } else {
      assert(false, `sending entries in progress state ${this.state}`);
    }
  }

  /** An acknowledgement up to `n`; true when it moved `match`. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** A rejection of the MsgApp at `rejected`, with the follower's hint; true when `next` moved (stale rejections are ignored). */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  toStatus(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
      inflightCount: this.inflights.count,
      inflightBytes: this.inflights.bytes,
      pendingSnapshot: this.pendingSnapshot,
    };
  }
}
