/**
 * A node's disk in the simulator. Writes are queued and become durable after a simulated
 * latency, in order; a crash keeps only what was durable plus (as a real disk may) a random
 * prefix of the writes in flight, whose acknowledgements were lost. The durable state is kept as
 * a MemoryStorage; after a restart the node's raft storage is rebuilt from it.
 */
import { MemoryStorage, type ConfState, type Entry, type HardState, type Snapshot } from '@tw/raft';
import type { Prng } from './prng.js';

export type DiskWrite =
  | { readonly kind: 'persist'; readonly snapshot?: Snapshot; readonly entries: readonly Entry[]; readonly hardState?: HardState }
  | { readonly kind: 'snapshot'; readonly index: number; readonly confState: ConfState; readonly data: Uint8Array; readonly compactTo: number };

interface Pending {
  readonly write: DiskWrite;
  readonly durableAt: number;
  readonly onDurable: (() => void | Promise<void>) | undefined;
}

export function applyWrite(s: MemoryStorage, w: DiskWrite): void {
  if (w.kind === 'persist') {
    if (w.snapshot !== undefined) s.applySnapshot(w.snapshot);
    if (w.entries.length > 0) s.append(w.entries);
    if (w.hardState !== undefined) s.setHardState(w.hardState);
  } else {
    if (w.index > s.snapshot().metadata.index) s.createSnapshot(w.index, w.confState, w.data);
    if (w.compactTo >= s.firstIndex()) s.compact(w.compactTo);
  }
}

/** A fresh copy of a storage (the raft-facing mirror rebuilt from the durable state). */
export function cloneStorage(from: MemoryStorage): MemoryStorage {
  const snap = from.snapshot();
  const to = new MemoryStorage(from.initialState().confState);
  if (snap.metadata.index > 0) to.applySnapshot(snap);
  to.setHardState(from.initialState().hardState);
  const first = from.firstIndex();
  const last = from.lastIndex();
  if (last >= first) to.append(from.entries(first, last + 1, Infinity));
  return to;
}

export class SimDisk {
  readonly durable: MemoryStorage;
  private pending: Pending[] = [];

  constructor(bootstrap: ConfState) {
    this.durable = new MemoryStorage(bootstrap);
  }

  /** Queues a write; returns when it becomes durable (callers schedule a flush at that time). */
  enqueue(write: DiskWrite, now: number, latency: number, onDurable?: () => void | Promise<void>): number {
    const last = this.pending[this.pending.length - 1];
    const durableAt = Math.max(now + latency, last?.durableAt ?? 0);
    this.pending.push({ write, durableAt, onDurable });
    return durableAt;
  }

  /**
   * Makes every write due by `now` durable, in order, and returns their callbacks, which the
   * caller runs in order (awaiting each) once the disk is settled.
   */
  flush(now: number): (() => void | Promise<void>)[] {
    const done: (() => void | Promise<void>)[] = [];
    while (this.pending.length > 0 && this.pending[0]!.durableAt <= now) {
      const p = this.pending.shift()!;
      applyWrite(this.durable, p.write);
      if (p.onDurable !== undefined) done.push(p.onDurable);
    }
    return done;
  }

  /** Power loss / SIGKILL: a random prefix of the in-flight writes survives, the rest is lost. */
  crash(rng: Prng): number {
    const keep = rng.int(this.pending.length + 1);
    for (let i = 0; i < keep; i++) applyWrite(this.durable, this.pending[i]!.write);
    const lost = this.pending.length - keep;
    this.pending = [];
    return lost;
  }

  get inFlight(): number {
    return this.pending.length;
  }
}
