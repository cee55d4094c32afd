/**
 * The durable raft log on LevelDB (classic-level): entries, hard state, membership and the latest
 * snapshot, implementing raft's synchronous {@link Storage} read side from an in-memory mirror and
 * a write side where each call is ONE atomic LevelDB batch.
 *
 * Write contract (what makes crash recovery sound):
 * - `persist(update)` writes a Ready's snapshot, entries and hard state in one batch: after a
 *   crash either all of it or none of it is on disk, never a torn mix. With `sync` (the default)
 *   the batch is fsync'd before the promise resolves; send the Ready's messages only after it.
 * - The mirror changes when a write is *called*, so raft sees its own writes at once; the disk
 *   catches up when the promise resolves. If a write fails the node must stop (the mirror is ahead
 *   of the disk): reopen from disk to recover.
 * - Writes are applied to disk in call order (one at a time).
 */
import { ClassicLevel } from 'classic-level';
import { assert } from '@tw/errors';
import { entrySizeBytes, EntryType, raftErrors, type ConfState, type Entry, type HardState, type InitialState, type Snapshot, type Storage } from '@tw/raft';
import {
  decodeConfState, decodeEntry, decodeEntryKey, decodeHardState, decodeIndexTerm, decodeSnapshot,
  encodeConfState, encodeEntry, encodeHardState, encodeIndexTerm, encodeSnapshot, entryKey,
  ENTRY_KEY_END, ENTRY_KEY_MIN, KEY_COMPACTED, KEY_CONF_STATE, KEY_HARD_STATE, KEY_SNAPSHOT,
} from './codec.js';
import { raftStorageErrors } from './errors.js';
import { ENTRY_DATA_MAX_BYTES, PERSIST_QUEUE_MAX, SNAPSHOT_MAX_BYTES } from './limits.js';

/** What one Ready asks to persist (step 1 of the Ready contract), plus the membership. */
export interface RaftLogUpdate {
  /** Install this snapshot: the log is replaced by it (entries after it may follow in `entries`). */
  readonly snapshot?: Snapshot;
  /** Append; an entry at index i first discards every stored entry with index >= i. */
  readonly entries?: readonly Entry[];
  readonly hardState?: HardState;
  /** The membership after an applied conf change (initialState returns it after a restart). */
  readonly confState?: ConfState;
  /**
   * false: write without fsync even when the storage syncs by default. Raft allows it when only
   * the commit index moved (etcd's MustSync rule). A later synced write syncs this one too.
   */
  readonly sync?: boolean;
}

export interface LevelRaftStorageOptions {
  /** fsync each batch before resolving (default true). Without it a machine crash can lose acknowledged writes. */
  readonly sync?: boolean;
  /** Membership written when the folder holds no raft log yet (a fresh cluster's voters). */
  readonly bootstrap?: ConfState;
  /**
   * LevelDB's memtable size in bytes (its `writeBufferSize`; LevelDB's default is 4 MiB). Up to
   * two are held in memory; a larger one flushes and compacts less often.
   */
  readonly writeBufferBytes?: number;
  readonly signal?: AbortSignal;
}

type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

const EMPTY_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };
const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw raftStorageErrors.create('TW_RAFT_STORAGE_ABORTED', 'raft log write aborted', { cause: signal.reason });
}

export class LevelRaftStorage implements Storage {
  /** ents[0] is the compaction point (index, term only); ents[1..] are the log. */
  private ents: Entry[];
  private hard: HardState;
  private conf: ConfState;
  private snap: Snapshot;
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private closed = false;

  private constructor(
    private readonly db: ClassicLevel<Uint8Array, Uint8Array>,
    private readonly sync: boolean,
    state: LoadedState,
  ) {
    this.ents = state.ents;
    this.hard = state.hard;
    this.conf = state.conf;
    this.snap = state.snap;
  }

  /** Opens (creating if missing) the raft log in the folder `location` and loads it. */
  static async open(location: string, options: LevelRaftStorageOptions = {}): Promise<LevelRaftStorage> {
    aborted(options.signal);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(location, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      ...(options.writeBufferBytes === undefined ? {} : { writeBufferSize: options.writeBufferBytes }),
    });
    try {
      await db.open();
    } catch (err) {
      throw raftStorageErrors.create('TW_RAFT_STORAGE_IO', `cannot open raft log at ${location}`, { cause: err });
    }
    try {
      const state = await load(db, options.signal);
      const storage = new LevelRaftStorage(db, options.sync ?? true, state);
      if (options.bootstrap !== undefined && !state.hasConf) await storage.persist({ confState: options.bootstrap });
      return storage;
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- Storage (read side, synchronous, from the mirror) ----

  initialState(): InitialState {
    return { hardState: this.hard, confState: this.conf };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw raftErrors.create('TW_RAFT_LOG_COMPACTED', `entries(${lo}): compacted up to ${offset}`);
    if (hi > this.lastIndex() + 1) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `entries(${lo}, ${hi}): last index is ${this.lastIndex()}`);
    if (this.ents.length === 1) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', 'the log is empty');
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!;
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw raftErrors.create('TW_RAFT_LOG_COMPACTED', `term(${i}): compacted up to ${offset}`);
    const e = this.ents[i - offset];
    if (e === undefined) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `term(${i}): last index is ${this.lastIndex()}`);
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

  // ---- write side (each call is one atomic batch) ----

  /** Persists a Ready's snapshot, entries, hard state (and membership) in one atomic batch. */
  persist(update: RaftLogUpdate, signal?: AbortSignal): Promise<void> {
    this.checkOpen();
    aborted(signal);
    const ops: BatchOp[] = [];
    if (update.snapshot !== undefined) this.stageSnapshot(update.snapshot, ops);
    if (update.entries !== undefined && update.entries.length > 0) this.stageAppend(update.entries, ops);
    if (update.hardState !== undefined) {
      this.hard = update.hardState;
      ops.push({ type: 'put', key: KEY_HARD_STATE, value: encodeHardState(update.hardState) });
    }
    if (update.confState !== undefined) {
      this.conf = update.confState;
      ops.push({ type: 'put', key: KEY_CONF_STATE, value: encodeConfState(update.confState) });
    }
    return this.write(ops, update.sync ?? true);
  }

  /**
   * Discards entries before `compactIndex`; the entry at it becomes the compaction point. Take a
   * snapshot covering `compactIndex` first (createSnapshot) so a lagging follower can catch up.
   */
  compact(compactIndex: number, signal?: AbortSignal): Promise<void> {
    this.checkOpen();
    aborted(signal);
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw raftErrors.create('TW_RAFT_LOG_COMPACTED', `compact(${compactIndex}): already compacted up to ${offset}`);
    if (compactIndex > this.lastIndex()) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `compact(${compactIndex}) beyond last index ${this.lastIndex()}`);
    const ops: BatchOp[] = [];
    for (let i = offset + 1; i <= compactIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
    const point = this.ents[compactIndex - offset]!;
    ops.push({ type: 'put', key: KEY_COMPACTED, value: encodeIndexTerm(point.index, point.term) });
    this.ents = [{ index: point.index, term: point.term, type: point.type, data: new Uint8Array(0) }, ...this.ents.slice(compactIndex - offset + 1)];
    return this.write(ops);
  }

  /** Records the application's image as of applied index `index` as the latest snapshot. */
  createSnapshot(index: number, confState: ConfState | undefined, data: Uint8Array, signal?: AbortSignal): Promise<Snapshot> {
    this.checkOpen();
    aborted(signal);
    if (index <= this.snap.metadata.index) throw raftErrors.create('TW_RAFT_SNAPSHOT_OUT_OF_DATE', `createSnapshot(${index}): have one at ${this.snap.metadata.index}`);
    if (index > this.lastIndex()) throw raftErrors.create('TW_RAFT_LOG_UNAVAILABLE', `createSnapshot(${index}) beyond last index ${this.lastIndex()}`);
    if (data.byteLength > SNAPSHOT_MAX_BYTES) throw raftStorageErrors.create('TW_RAFT_STORAGE_TOO_LARGE', `snapshot of ${data.byteLength} bytes`);
    const snap: Snapshot = { metadata: { index, term: this.term(index), confState: confState ?? this.conf }, data };
    this.snap = snap;
    return this.write([{ type: 'put', key: KEY_SNAPSHOT, value: encodeSnapshot(snap) }]).then(() => snap);
  }

  /** Waits for every write called so far. */
  flush(): Promise<void> {
    return this.tail;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.db.close();
  }

  private stageSnapshot(snap: Snapshot, ops: BatchOp[]): void {
    if (snap.metadata.index <= this.snap.metadata.index) {
      throw raftErrors.create('TW_RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot at ${snap.metadata.index}: have one at ${this.snap.metadata.index}`);
    }
    if (snap.data.byteLength > SNAPSHOT_MAX_BYTES) throw raftStorageErrors.create('TW_RAFT_STORAGE_TOO_LARGE', `snapshot of ${snap.data.byteLength} bytes`);
    for (let i = this.firstIndex(); i <= this.lastIndex(); i++) ops.push({ type: 'del', key: entryKey(i) });
    ops.push({ type: 'put', key: KEY_SNAPSHOT, value: encodeSnapshot(snap) });
    ops.push({ type: 'put', key: KEY_COMPACTED, value: encodeIndexTerm(snap.metadata.index, snap.metadata.term) });
    ops.push({ type: 'put', key: KEY_CONF_STATE, value: encodeConfState(snap.metadata.confState) });
    this.snap = snap;
    this.conf = snap.metadata.confState;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  private stageAppend(entries: readonly Entry[], ops: BatchOp[]): void {
    for (let k = 1; k < entries.length; k++) {
      assert(entries[k]!.index === entries[k - 1]!.index + 1, 'appended entries are not contiguous');
    }
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // all already compacted
    const toAdd = entries[0]!.index < first ? entries.slice(first - entries[0]!.index) : entries;
    const start = toAdd[0]!.index;
    if (start > this.lastIndex() + 1) {
      throw raftErrors.create('TW_RAFT_BAD_ENTRY', `append at ${start} leaves a gap after last index ${this.lastIndex()}`);
    }
    for (const e of toAdd) {
      if (e.data.byteLength > ENTRY_DATA_MAX_BYTES) throw raftStorageErrors.create('TW_RAFT_STORAGE_TOO_LARGE', `entry ${e.index} of ${e.data.byteLength} bytes`);
    }
    // Stored entries past the new last index are a conflicting suffix: delete them.
    for (let i = last + 1; i <= this.lastIndex(); i++) ops.push({ type: 'del', key: entryKey(i) });
    for (const e of toAdd) ops.push({ type: 'put', key: entryKey(e.index), value: encodeEntry(e) });
    const offset = this.ents[0]!.index;
    this.ents = this.ents.slice(0, start - offset).concat(toAdd);
  }

  private write(ops: BatchOp[], sync = true): Promise<void> {
    this.queued++;
    const run = async (): Promise<void> => {
      try {
        if (ops.length > 0) await this.db.batch(ops, { sync: this.sync && sync });
      } catch (err) {
        throw raftStorageErrors.create('TW_RAFT_STORAGE_IO', 'raft log batch write failed', { cause: err });
      } finally {
        this.queued--;
      }
    };
    // A failed write fails every later one too: the disk no longer matches the mirror.
    const next = this.tail.then(run);
    this.tail = next;
    return next;
  }

  /** Checked before the mirror changes, so a refused write leaves no trace. */
  private checkOpen(): void {
    if (this.closed) throw raftStorageErrors.create('TW_RAFT_STORAGE_CLOSED', 'raft log storage is closed');
    if (this.queued >= PERSIST_QUEUE_MAX) throw raftStorageErrors.create('TW_RAFT_STORAGE_QUEUE_FULL', `${this.queued} raft log writes queued`);
  }
}

interface LoadedState {
  ents: Entry[];
  hard: HardState;
  conf: ConfState;
  hasConf: boolean;
  snap: Snapshot;
}

async function load(db: ClassicLevel<Uint8Array, Uint8Array>, signal: AbortSignal | undefined): Promise<LoadedState> {
  let hard = EMPTY_HARD_STATE;
  let conf = EMPTY_CONF_STATE;
  let hasConf = false;
  let point = { index: 0, term: 0 };
  let snap: Snapshot = { metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) };
  try {
    const [h, c, m, s] = await db.getMany([KEY_HARD_STATE, KEY_CONF_STATE, KEY_COMPACTED, KEY_SNAPSHOT]);
    if (h !== undefined) hard = decodeHardState(h);
    if (c !== undefined) {
      conf = decodeConfState(c);
      hasConf = true;
    }
    if (m !== undefined) point = decodeIndexTerm(m);
    if (s !== undefined) snap = decodeSnapshot(s);
  } catch (err) {
    if (raftStorageErrors.is(err, 'TW_RAFT_STORAGE_CORRUPT')) throw err;
    throw raftStorageErrors.create('TW_RAFT_STORAGE_IO', 'cannot read raft log state', { cause: err });
  }
  const ents: Entry[] = [{ index: point.index, term: point.term, type: EntryType.Normal, data: new Uint8Array(0) }];
  try {
    for await (const [key, value] of db.iterator({ gte: ENTRY_KEY_MIN, lt: ENTRY_KEY_END })) {
      aborted(signal);
      const index = decodeEntryKey(key);
      const expected = point.index + ents.length;
      if (index !== expected) {
        throw raftStorageErrors.create('TW_RAFT_STORAGE_CORRUPT', `raft log on disk: entry ${index} where ${expected} was expected`);
      }
      ents.push(decodeEntry(index, value));
    }
  } catch (err) {
    if (raftStorageErrors.is(err, 'TW_RAFT_STORAGE_CORRUPT') || raftStorageErrors.is(err, 'TW_RAFT_STORAGE_ABORTED')) throw err;
    throw raftStorageErrors.create('TW_RAFT_STORAGE_IO', 'cannot read raft log entries', { cause: err });
  }
  return { ents, hard, conf, hasConf, snap };
}
