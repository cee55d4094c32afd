import { raftErrors } from './errors.js';
import { EntryType, entrySizeBytes, type ConfState, type Entry, type HardState, type InitialState, type Snapshot, type Storage } from './types.js';

/** Keeps the first entries of `ents` whose sizes add up to at most `maxBytes` (always at least one). */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0 || maxBytes === Infinity) return ents;
  let size = entrySizeBytes(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySizeBytes(ents[limit]!);
    if (size > maxBytes) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}

const EMPTY = new Uint8Array(0);

/**
 * An in-memory {@link Storage} (etcd's MemoryStorage). `ents[0]` is a dummy entry standing for
 * the snapshot (its index and term); real entries follow. After a restart a durable store refills
 * one of these with `applySnapshot`, `setHardState` and `append`.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];

  /** `confState`: the initial membership for a fresh cluster (bootstrap). */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.snap = { metadata: { index: 0, term: 0, confState }, data: EMPTY };
    this.ents = [{ index: 0, term: 0, type: EntryType.Normal, data: EMPTY }];
  }

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /** Records the current membership (kept with the snapshot metadata for `initialState`). */
  setConfState(cs: ConfState): void {
    this.snap = { ...this.snap, metadata: { ...this.snap.metadata, confState: cs } };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw raftErrors.create('TW_RAFT_LOG_COMPACTED', `entries from ${lo}: compacted up to ${offset}`);
    if (hi > this.lastIndex() + 1) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `entries up to ${hi} beyond last index ${this.lastIndex()}`);
    if (this.ents.length === 1) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', 'log is empty');
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw raftErrors.create('TW_RAFT_LOG_COMPACTED', `term of ${i}: compacted up to ${offset}`);
    const e = this.ents[i - offset];
    if (e === undefined) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `term of ${i}: beyond last index ${this.lastIndex()}`);
    return e.term;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) {
      throw raftErrors.create('TW_RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot at ${snap.metadata.index} is not newer than ${this.snap.metadata.index}`);
    }
    this.snap = snap;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: EntryType.Normal, data: EMPTY }];
  }

  /**
   * Makes a snapshot of the state machine as of applied index `i` (with membership `cs` and image
   * `data`); entries stay until `compact`.
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) {
      throw raftErrors.create('TW_RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot at ${i} is not newer than ${this.snap.metadata.index}`);
    }
    const offset = this.ents[0]!.index;
    if (i > this.lastIndex()) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `snapshot at ${i} beyond last index ${this.lastIndex()}`);
    this.snap = { metadata: { index: i, term: this.ents[i - offset]!.term, confState: cs ?? this.snap.metadata.confState }, data };
    return this.snap;
  }

  /** Discards entries up to and including `compactIndex` (which must be applied and <= lastIndex). */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw raftErrors.create('TW_RAFT_LOG_COMPACTED', `compact to ${compactIndex}: already compacted up to ${offset}`);
    if (compactIndex > this.lastIndex()) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `compact to ${compactIndex} beyond last index ${this.lastIndex()}`);
    const i = compactIndex - offset;
    const at = this.ents[i]!;
    this.ents = [{ index: at.index, term: at.term, type: EntryType.Normal, data: EMPTY }, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries (consecutive indexes); an entry at index i first discards every stored entry
   * with index >= i. Entries at or below the snapshot are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    let ents = entries;
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    if (this.ents.length > offset) {
      this.ents = this.ents.slice(0, offset);
      for (const e of ents) this.ents.push(e);
    } else if (this.ents.length === offset) {
      for (const e of ents) this.ents.push(e);
    } else {
      throw raftErrors.create('TW_RAFT_BAD_ENTRY', `missing log entries: last index ${this.lastIndex()}, appending at ${ents[0]!.index}`);
    }
  }
}
