import { assert, isTwError } from '@tw/errors';
import { limitSize } from './memory-storage.js';
import type { Entry, Snapshot, Storage } from './types.js';

/**
 * Entries and a snapshot not yet persisted by the application (etcd's `unstable`). `offset` is the
 * index of `entries[0]`.
 */
class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** The application persisted entries up to (i, t): drop them from here. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything unstable (and, from the application's view, what it persisted from `after`).
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length, () => `unstable slice [${lo},${hi}) out of [${this.offset},${this.offset + this.entries.length})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/**
 * The raft log: persisted entries in Storage, newer ones in `unstable`, plus the commit and apply
 * cursors. Invariant: applied <= applying <= committed <= lastIndex.
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;
  /** Highest index handed to the application in a Ready and not yet advanced. */
  applying: number;
  /** Called when an append replaces entries from `fromIndex` on (a conflicting suffix). */
  onTruncate: ((fromIndex: number) => void) | undefined;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i, or undefined when i is compacted away or beyond the last index. */
  term(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (err) {
      if (isTwError(err, 'TW_RAFT_LOG_COMPACTED') || isTwError(err, 'TW_RAFT_LOG_UNAVAILABLE')) return undefined;
      throw err;
    }
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'term of the last index is known');
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi) within `maxBytes`, or undefined when lo was compacted (the caller sends a
   * snapshot instead).
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    assert(hi <= this.lastIndex() + 1, () => `slice [${lo},${hi}) beyond last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      } catch (err) {
        if (isTwError(err, 'TW_RAFT_LOG_COMPACTED')) return undefined;
        throw err;
      }
      if (stored.length < Math.min(hi, off) - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }

  /** Appends entries proposed or received (index of the first must be > committed). */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(after >= this.committed, () => `append after ${after} is below committed ${this.committed}`);
    if (after < this.lastIndex()) this.onTruncate?.(after + 1);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** First index in `ents` whose term conflicts with (or is missing from) the log, or 0. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (and that term): where a leader of
   * `term` can next probe. Returns [index, 0] when the term there is unknown (compacted).
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const t = this.term(index);
      if (t === undefined) return [index, 0];
      if (t <= term) return [index, t];
    }
    return [0, 0];
  }

  /** The follower side of AppendEntries: returns the new last index, or undefined when (index, logTerm) does not match. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, () => `entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      assert(this.lastIndex() >= toCommit, () => `commit ${toCommit} is beyond last index ${this.lastIndex()}: log corrupted, truncated or lost`);
      this.committed = toCommit;
    }
  }

  /** Commits up to `maxIndex` only if that entry is of `term` (the paper's section 5.4.2 rule). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(this.committed >= i && i >= this.applied, () => `applied ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  hasNextCommittedEnts(): boolean {
    const off = Math.max(this.applying + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  nextCommittedEnts(maxBytes: number): Entry[] {
    const off = Math.max(this.applying + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    const ents = this.slice(off, this.committed + 1, maxBytes);
    assert(ents !== undefined, 'committed entries not yet applied cannot be compacted');
    return ents;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** All entries from `lo` (for tests and traces). */
  allEntries(lo = this.firstIndex()): Entry[] {
    return this.slice(lo, this.lastIndex() + 1, Infinity) ?? [];
  }
}
