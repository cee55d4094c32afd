import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { assert, isTwError, type TwError } from '@tw/errors';
import { extentErrors } from './errors.js';
import { Extent, EXTENT_FILE_RE, extentFileName } from './extent.js';
import { ExtentReader } from './extent-reader.js';
import { byteLengthOf, type FileLayer } from './file-layer.js';
import {
  decodeEntry,
  decodeExtentMeta,
  decodeU64,
  encodeEntry,
  encodeExtentMeta,
  encodeU64,
  extentKey,
  fragmentKey,
  KEY_FRAGMENT,
  KEY_REBUILD_TOMBSTONE,
  metaKey,
  prefixEnd,
  prefixedKey,
  type IndexEntry,
} from './index-codec.js';
import {
  APPEND_INFLIGHT_BYTES_MAX,
  APPEND_INFLIGHT_MAX,
  COMPACTION_EXTENTS_MAX,
  COMPACTION_GARBAGE_RATIO_DEFAULT,
  INDEX_BEHIND_RECORDS_MAX,
  DEAD_EXTENT_RECLAIM_BYTES_MIN,
  EXTENT_NO_MAX,
  EXTENT_SIZE_BYTES_DEFAULT,
  EXTENT_SIZE_BYTES_MAX,
  EXTENT_SIZE_BYTES_MIN,
  GET_RETRIES_MAX,
  GROUP_COMMIT_MS_DEFAULT,
  GROUP_COMMIT_MS_MAX,
  HWM_STEP_BYTES,
  ID_BYTES_MAX,
  LIST_LIMIT_DEFAULT,
  LIST_LIMIT_MAX,
  PAYLOAD_BYTES_MAX_DEFAULT,
  PUT_STREAM_IDLE_MS_DEFAULT,
  PUT_STREAM_LIFETIME_MS_DEFAULT,
  RECORD_ALIGN_BYTES,
  REBUILD_BATCH_RECORDS,
  RESERVE_BYTES_DEFAULT,
  SCAN_BUFFER_BYTES,
  STATFS_REFRESH_MS,
} from './limits.js';
import { lockDataDir, type DirLock } from './lock-file.js';
import { Admission, Mutex } from './mutex.js';
import { nodeFileLayer } from './node-file-layer.js';
import {
  encodeHeader,
  encodeTrailer,
  headerBytesFor,
  parseHeader,
  recordBytesFor,
  recordChecksum,
  RECORD_TRAILER_BYTES,
  RecordType,
} from './record.js';
import { Checksum64Stream } from './checksum.js';

/** When a put counts as durable. */
export type FsyncPolicy =
  /** fdatasync after every write (concurrent puts share a sync). */
  | { mode: 'always' }
  /**
   * group commit: one flush at a time; it fdatasyncs (in parallel) the extents of the records
   * written so far, in sequence order up to the first one still being written (a put stream
   * holds back the records after it), then indexes and acknowledges them. Records written while a
   * flush runs share the next one, which starts when it ends, but at least `intervalMs` (default 1;
   * 0: back to back) after the start of the previous sync. A put that arrives when no flush runs and
   * the last sync started at least `intervalMs` ago is synced at once (no added latency when idle).
   */
  | { mode: 'group'; intervalMs?: number }
  /** no fdatasync: a put resolves once written to the page cache (survives a process crash, not power loss). */
  | { mode: 'never' };

export interface CorruptionReport {
  extentNo: number;
  offset: number;
  /** The fragment, when the index or a valid header names it. */
  id?: Buffer;
  reason: string;
  during: 'get' | 'recovery' | 'rebuild' | 'compaction';
}

export interface ExtentStoreOptions {
  /** Data folder: extent files, the index (`index/`) and the lock live here. */
  dir: string;
  /** File access (default: node:fs). Tests pass a FaultyFileLayer. */
  files?: FileLayer;
  /** Size of each extent file (default 1 GiB; at least 64 KiB). */
  extentSizeBytes?: number;
  /** Default: group commit every 5 ms. */
  fsync?: FsyncPolicy;
  /** Upper bound on bytes held in extent files (default: no bound but the file system's). */
  capacityBytes?: number;
  /** Free bytes of the file system that writes never use (default 1 GiB). */
  reserveBytes?: number;
  /** Largest fragment accepted (default 256 MiB, at most what fits an extent). */
  payloadBytesMax?: number;
  /**
   * Bytes of puts admitted but not yet acknowledged (default 512 MiB): more wait, so the caller
   * buffers pinned by in-flight writes stay bounded. One put larger than this runs alone.
   */
  appendInflightBytesMax?: number;
  compaction?: {
    /** Extents whose (garbage / used) reaches this are rewritten (default 0.5). */
    garbageRatioMin?: number;
    /** Background compaction period; 0 (default) runs compaction only when compact() is called. */
    intervalMs?: number;
    /**
     * Drop an extent as soon as its last live record is deleted, when it holds at least
     * DEAD_EXTENT_RECLAIM_BYTES_MIN (or half its size): the active extent is then sealed and a
     * fresh one started. Default true; false leaves dead extents to compact().
     */
    reclaimDeadExtents?: boolean;
  };
  /**
   * Tests only: runs before each index batch of acknowledged records is applied, and may fail it
   * (LevelDB is a boundary this package does not own; its failures cannot be provoked otherwise).
   */
  indexHooks?: { beforeBatch?: () => Promise<void> };
  /** Called after dead extents were dropped (compaction.reclaimDeadExtents). */
  onReclaim?: (result: CompactResult) => void;
  /** Called for every record found corrupt (the bytes are never served); feed repair from here. */
  onCorrupt?: (report: CorruptionReport) => void;
  /** Drop the index and rebuild it from the extents while opening (`--rebuild-index`). */
  rebuildIndex?: boolean;
  /** A put stream (beginPut) that gets no write or finish for this long is abandoned (default 30 s). */
  putStreamIdleMs?: number;
  /**
   * A put stream not finished this long after beginPut is abandoned, however steadily its pieces
   * come (default 60 s): puts admitted after it wait for it to end before they are acknowledged.
   */
  putStreamLifetimeMs?: number;
}

/**
 * A put whose payload arrives in pieces (ExtentStore.beginPut). Pieces come in payload order;
 * each is written to the extent at its place as soon as it is given.
 */
export interface PutStream {
  /** The payload length announced to beginPut. */
  readonly payloadBytes: number;
  /** Payload bytes given to `write` so far. */
  readonly receivedBytes: number;
  /** Set once the stream was abandoned (by the caller, the idle bound or a closing store). */
  readonly abandoned: boolean;
  /**
   * Hands over the next payload bytes: `chunk` goes at `offsetInPayload`, which must equal
   * `receivedBytes` (bytes come in order: the record checksum is computed as they pass). The
   * piece that completes the payload is written together with the trailing checksum, making the
   * record valid on disk (an index rebuild could then find it even if it is never finished):
   * verify the payload before handing over its last bytes.
   * BORROWED: the chunk must stay unchanged until `finish` or `abandon` settles. Returns at
   * once; a write error surfaces at `finish`. Throws TW_EXTENT_ARGUMENT_INVALID for a chunk out
   * of order or past the announced length, TW_EXTENT_ABORTED after abandon.
   */
  write(chunk: Uint8Array, offsetInPayload: number): void;
  /**
   * Every byte is in: waits for the pieces' writes, writes the trailing checksum, and resolves
   * when the record is durable per the fsync policy (as `put` does). Rejects (and abandons) when
   * bytes are missing, a write failed (TW_EXTENT_IO / TW_EXTENT_FULL) or the stream was
   * abandoned (TW_EXTENT_ABORTED).
   */
  finish(): Promise<{ seq: number }>;
  /**
   * Gives up: the record will never be visible, and later puts are no longer held back by it.
   * Resolves once no write of this stream is in flight any more (the caller's chunks are free).
   * Idempotent; a no-op once `finish` has written the trailer.
   */
  abandon(reason?: unknown): Promise<void>;
}

export interface PutOptions {
  /** Aborts while waiting for admission; once the record is being written the put completes. */
  signal?: AbortSignal;
}

export interface DeleteOptions extends PutOptions {
  /**
   * Deletes only if the id's newest record (written, being written or being synced, not only the
   * indexed one) is the put with this sequence number; otherwise writes nothing and resolves
   * false. For deleting exactly the version that was judged (fragment GC): a re-put in flight
   * gets a lower sequence number than a tombstone reserved after it, so an unconditional delete
   * would remove it once acknowledged.
   */
  ifSeq?: number;
}

export interface GetOptions {
  /** Destination: the payload is read straight into it (its first `sizeBytes` bytes). */
  into?: Uint8Array;
  signal?: AbortSignal;
}

export interface GetResult {
  /** The payload: a view of `into` when given, else a new Buffer. */
  bytes: Buffer;
  seq: number;
}

export interface FragmentStat {
  id: Buffer;
  sizeBytes: number;
  seq: number;
  extentNo: number;
  offset: number;
  /** Trailing checksum of the record (xxh64 of header + payload). */
  checksum: bigint;
}

export interface ListOptions {
  prefix?: Uint8Array;
  /** Continue after this id (the `next` of the previous page). */
  after?: Uint8Array;
  /** Page size, at most LIST_LIMIT_MAX (default 100). */
  limit?: number;
  signal?: AbortSignal;
}

export interface ListPage {
  entries: { id: Buffer; sizeBytes: number; seq: number }[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: Buffer;
}

export interface CapacityReport {
  /** Bytes of records the index points at. */
  liveBytes: number;
  /** Bytes written to extents that no live record occupies (overwritten, deleted, torn, tombstones). */
  garbageBytes: number;
  /** Bytes that puts may still use (capacity, file-system free space and reserve considered). */
  freeBytes: number;
  extentCount: number;
  extentSizeBytes: number;
  fragmentCount: number;
}

export interface CompactOptions {
  garbageRatioMin?: number;
  signal?: AbortSignal;
}

export interface CompactResult {
  extentsCompacted: number;
  bytesReclaimed: number;
  recordsMoved: number;
}

interface AppendOp {
  type: RecordType;
  id: Buffer;
  idHex: string;
  seq: number;
  extent: Extent;
  offset: number;
  recordBytes: number;
  payloadBytes: number;
  checksum: bigint;
  written: boolean;
  error: TwError | undefined;
  resolve: (deleted: boolean) => void;
  reject: (err: unknown) => void;
  /** Settles when the flush that takes this record does (resolve: deleted? for tombstones). */
  done: Promise<boolean>;
}

type Db = ClassicLevel<Buffer, Buffer>;
type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const FORMAT = Buffer.from('twx-index-1');

/** Opens (and recovers) the store in `options.dir`. */
export async function openExtentStore(options: ExtentStoreOptions): Promise<ExtentStore> {
  const store = new ExtentStore(options);
  await store.open();
  return store;
}

/**
 * Append-only extent files with a LevelDB index. One instance owns its data folder.
 *
 * Ordering: records get increasing sequence numbers in the order puts and deletes are admitted;
 * a put of an id replaces older ones, a delete removes every older put. A put's payload buffers
 * must stay unchanged until its promise settles (they are written without a copy).
 */
export class ExtentStore {
  readonly dir: string;
  readonly files: FileLayer;
  readonly extentSizeBytes: number;
  readonly fsync: Required<FsyncPolicy> | { mode: 'always' } | { mode: 'never' };
  readonly payloadBytesMax: number;
  readonly capacityBytes: number;
  readonly reserveBytes: number;
  readonly garbageRatioMin: number;
  readonly #options: ExtentStoreOptions;

  #db: Db | undefined;
  #lock: DirLock | undefined;
  #state: 'new' | 'open' | 'closing' | 'closed' = 'new';
  readonly #extents = new Map<number, Extent>();
  readonly #retired = new Set<number>();
  #active: Extent | undefined;
  #compactionOut: Extent | undefined;
  #nextExtentNo = 1;
  #nextSeq = 1;
  #appliedSeq = 0;
  #fragmentCount = 0;

  readonly #pending: AppendOp[] = [];
  /**
   * The batch a flush took from #pending and is syncing: acknowledged next, then known to
   * #unindexed and #indexBehindByExtent. Compaction and the reclaim of dead extents must count its
   * records (their index entries do not exist yet).
   */
  #syncing: readonly AppendOp[] = [];
  readonly #admission: Admission;
  readonly #appendMutex = new Mutex();
  readonly #indexMutex = new Mutex();
  readonly #compactMutex = new Mutex();
  #flushing: Promise<void> | undefined;
  #flushAgain = false;
  #flushTimer: NodeJS.Timeout | undefined;
  /** performance.now() when the last flush (sync + index) started; paces group commit. */
  #lastFlushAtMs = -Infinity;
  #compactTimer: NodeJS.Timeout | undefined;
  /**
   * Puts acknowledged but not yet in the index (their batch is queued behind the sync that made
   * them durable), by id (latin1): readers look here first. An entry goes when its own batch is
   * applied; a later put of the same id replaces it.
   */
  readonly #unindexed = new Map<string, { seq: number; entry: IndexEntry }>();
  /** Records in queued index batches, in all and by extent (compaction leaves those extents alone). */
  #indexBehind = 0;
  readonly #indexBehindByExtent = new Map<Extent, number>();
  /** Set when an index batch failed: nothing more is acknowledged, and no clean shutdown is recorded. */
  #indexFailure: TwError | undefined;
  readonly #indexHooks: ExtentStoreOptions['indexHooks'];
  readonly #reclaimDeadExtents: boolean;
  #reclaimScheduled = false;
  #fsFreeBytes = Infinity;
  #fsFreeAt = 0;
  #writtenSinceStatfs = 0;
  readonly #streams = new Set<StoredPutStream>();
  readonly #putStreamIdleMs: number;
  readonly #putStreamLifetimeMs: number;

  constructor(options: ExtentStoreOptions) {
    this.#options = options;
    this.dir = options.dir;
    this.files = options.files ?? nodeFileLayer();
    this.extentSizeBytes = options.extentSizeBytes ?? EXTENT_SIZE_BYTES_DEFAULT;
    if (
      !Number.isInteger(this.extentSizeBytes) ||
      this.extentSizeBytes < EXTENT_SIZE_BYTES_MIN ||
      this.extentSizeBytes > EXTENT_SIZE_BYTES_MAX ||
      this.extentSizeBytes % RECORD_ALIGN_BYTES !== 0
    ) {
      throw invalid('extentSizeBytes', `must be a multiple of 4096 in [${EXTENT_SIZE_BYTES_MIN}, ${EXTENT_SIZE_BYTES_MAX}]`);
    }
    const f = options.fsync ?? { mode: 'group' };
    if (f.mode === 'group') {
      const intervalMs = f.intervalMs ?? GROUP_COMMIT_MS_DEFAULT;
      if (!(intervalMs >= 0 && intervalMs <= GROUP_COMMIT_MS_MAX)) throw invalid('fsync.intervalMs', `must be in [0, ${GROUP_COMMIT_MS_MAX}]`);
      this.fsync = { mode: 'group', intervalMs };
    } else if (f.mode === 'always' || f.mode === 'never') {
      this.fsync = { mode: f.mode };
    } else {
      throw invalid('fsync.mode', 'must be always, group or never');
    }
    const fit = this.extentSizeBytes - headerBytesFor(ID_BYTES_MAX) - RECORD_TRAILER_BYTES;
    this.payloadBytesMax = Math.min(options.payloadBytesMax ?? PAYLOAD_BYTES_MAX_DEFAULT, fit);
    if (!(this.payloadBytesMax > 0)) throw invalid('payloadBytesMax', 'must be positive');
    this.capacityBytes = options.capacityBytes ?? Infinity;
    if (!(this.capacityBytes >= this.extentSizeBytes)) throw invalid('capacityBytes', 'must hold at least one extent');
    this.reserveBytes = options.reserveBytes ?? RESERVE_BYTES_DEFAULT;
    if (!(this.reserveBytes >= 0)) throw invalid('reserveBytes', 'must be >= 0');
    const inflightBytesMax = options.appendInflightBytesMax ?? APPEND_INFLIGHT_BYTES_MAX;
    if (!(inflightBytesMax > 0 && inflightBytesMax <= APPEND_INFLIGHT_BYTES_MAX)) throw invalid('appendInflightBytesMax', `must be in (0, ${APPEND_INFLIGHT_BYTES_MAX}]`);
    this.#admission = new Admission(APPEND_INFLIGHT_MAX, inflightBytesMax);
    this.#putStreamIdleMs = options.putStreamIdleMs ?? PUT_STREAM_IDLE_MS_DEFAULT;
    if (!(this.#putStreamIdleMs > 0)) throw invalid('putStreamIdleMs', 'must be positive');
    this.#putStreamLifetimeMs = options.putStreamLifetimeMs ?? PUT_STREAM_LIFETIME_MS_DEFAULT;
    if (!(this.#putStreamLifetimeMs > 0)) throw invalid('putStreamLifetimeMs', 'must be positive');
    this.#reclaimDeadExtents = options.compaction?.reclaimDeadExtents ?? true;
    this.#indexHooks = options.indexHooks;
    this.garbageRatioMin = options.compaction?.garbageRatioMin ?? COMPACTION_GARBAGE_RATIO_DEFAULT;
    if (!(this.garbageRatioMin > 0 && this.garbageRatioMin <= 1)) throw invalid('compaction.garbageRatioMin', 'must be in (0, 1]');
  }

  // ---------------------------------------------------------------- open / recovery

  /** @internal use openExtentStore */
  async open(): Promise<void> {
    assert(this.#state === 'new', 'open() called twice');
    await this.files.mkdir(this.dir);
    this.#lock = lockDataDir(this.dir);
    try {
      const db: Db = new ClassicLevel<Buffer, Buffer>(join(this.dir, 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      try {
        await db.open();
      } catch (err) {
        const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
        if (code === 'LEVEL_LOCKED') throw extentErrors.create('TW_EXTENT_LOCKED', `index of ${this.dir} is locked by another process`, { cause: err });
        throw extentErrors.create('TW_EXTENT_IO', `cannot open the index of ${this.dir}`, { cause: err });
      }
      this.#db = db;
      await this.#openExtents();
      const format = await db.get(metaKey('format'));
      const needRebuild = this.#options.rebuildIndex === true || (format === undefined && this.#extents.size > 0);
      if (needRebuild) {
        await this.#rebuild();
      } else {
        await this.#recover();
      }
      await this.#account();
      this.#pickActive();
      await db.batch([
        { type: 'put', key: metaKey('format'), value: FORMAT },
        { type: 'del', key: metaKey('clean') },
      ]);
      await this.#refreshStatfs(true);
      this.#state = 'open';
      const intervalMs = this.#options.compaction?.intervalMs ?? 0;
      if (intervalMs > 0) {
        this.#compactTimer = setInterval(() => {
          void this.compact().catch(() => undefined);
        }, intervalMs);
        this.#compactTimer.unref();
      }
    } catch (err) {
      await this.#closeResources();
      throw err;
    }
  }

  async #openExtents(): Promise<void> {
    const names = (await this.files.readdir(this.dir)).sort();
    for (const name of names) {
      const m = EXTENT_FILE_RE.exec(name);
      if (!m) continue;
      const no = Number(m[1]);
      const path = join(this.dir, name);
      const handle = await this.files.open(path, 'r+');
      const { sizeBytes } = await handle.stat();
      const e = new Extent(no, path, handle, Math.max(sizeBytes, this.extentSizeBytes));
      if (sizeBytes < this.extentSizeBytes) await handle.allocate(this.extentSizeBytes);
      this.#extents.set(no, e);
      this.#nextExtentNo = Math.max(this.#nextExtentNo, no + 1);
    }
  }

  /**
   * Absorbs records written after the last index batch (the torn tail of a crash) and cuts what
   * cannot be read back. Records with seq <= the applied watermark were already taken into
   * account by the index (applied, superseded or failed) and are skipped.
   */
  async #recover(): Promise<void> {
    const db = this.#db!;
    const applied = await db.get(metaKey('applied-seq'));
    this.#appliedSeq = applied === undefined ? 0 : decodeU64(applied);
    const clean = (await db.get(metaKey('clean'))) !== undefined;
    let maxSeq = this.#appliedSeq;
    for (const e of this.#extents.values()) {
      const raw = await db.get(extentKey(e.no));
      const meta = raw === undefined ? { tailBytes: 0, minSeq: Infinity } : decodeExtentMeta(raw);
      e.minSeq = meta.minSeq;
      // Nothing was ever written past the persisted high-water mark: no need to scan beyond it.
      const limit = Math.min(e.sizeBytes, Math.max(meta.tailBytes, meta.hwmBytes ?? e.sizeBytes));
      const seen = await this.#scanAndAbsorb(e, meta.tailBytes, clean && raw !== undefined, this.#appliedSeq, 'recovery', limit);
      maxSeq = Math.max(maxSeq, seen);
    }
    await this.#clearRebuildTombstones();
    this.#appliedSeq = maxSeq;
    this.#nextSeq = maxSeq + 1;
    await db.batch([...this.#extentMetaOps(), { type: 'put', key: metaKey('applied-seq'), value: encodeU64(maxSeq) }], { sync: true });
  }

  /** Index writes recording every extent's absorbed tail and high-water mark. */
  #extentMetaOps(): BatchOp[] {
    return [...this.#extents.values()].map((e) => ({ type: 'put' as const, key: extentKey(e.no), value: this.#metaOf(e) }));
  }

  /** Drops the index and rebuilds it by scanning every extent: the latest record per id wins. */
  async #rebuild(): Promise<void> {
    const db = this.#db!;
    await db.clear();
    let maxSeq = 0;
    for (const e of this.#extents.values()) {
      e.minSeq = Infinity;
      e.liveBytes = 0;
      const seen = await this.#scanAndAbsorb(e, 0, false, 0, 'rebuild');
      maxSeq = Math.max(maxSeq, seen);
    }
    await this.#clearRebuildTombstones();
    this.#appliedSeq = maxSeq;
    this.#nextSeq = maxSeq + 1;
    await db.batch(
      [...this.#extentMetaOps(), { type: 'put', key: metaKey('applied-seq'), value: encodeU64(maxSeq) }, { type: 'put', key: metaKey('format'), value: FORMAT }],
      { sync: true },
    );
  }

  /**
   * Scans `e` from `start`, indexing records with seq > `minSeqExclusive` (newest wins, tombstones
   * remembered under `t` keys until the pass ends), then sets the extent's tail after the last
   * valid record and clears everything past it. `trustTail`: the store was closed cleanly, so
   * the first gap ends the scan. Returns the highest sequence number seen.
   */
  async #scanAndAbsorb(
    e: Extent,
    start: number,
    trustTail: boolean,
    minSeqExclusive: number,
    during: 'recovery' | 'rebuild',
    limitBytes = e.sizeBytes,
  ): Promise<number> {
    const reader = new ExtentReader(e.handle, limitBytes, Buffer.allocUnsafe(SCAN_BUFFER_BYTES));
    let off = start;
    let tail = start;
    let maxSeq = 0;
    let dirtyPastTail = false;
    let batch: { type: RecordType; id: Buffer; entry: IndexEntry }[] = [];
    let gapStart = -1;
    while (off + RECORD_ALIGN_BYTES <= limitBytes) {
      const r = await reader.recordAt(off);
      if (r.kind === 'record') {
        if (gapStart >= 0) {
          // Unreadable bytes followed by valid records: a torn write among concurrent ones or a
          // damaged region. Report it; the records after it stand.
          this.#report({ extentNo: e.no, offset: gapStart, reason: 'unreadable region before valid records', during });
          gapStart = -1;
        }
        const h = r.header;
        maxSeq = Math.max(maxSeq, h.seq);
        e.minSeq = Math.min(e.minSeq, h.seq);
        if (h.seq > minSeqExclusive) {
          batch.push({
            type: h.type,
            id: h.id,
            entry: { extentNo: e.no, offset: off, payloadBytes: h.payloadBytes, recordBytes: r.recordBytes, seq: h.seq, checksum: r.checksum },
          });
          if (batch.length >= REBUILD_BATCH_RECORDS) {
            await this.#absorb(batch);
            batch = [];
          }
        }
        off += r.recordBytes;
        tail = off;
        dirtyPastTail = false;
        continue;
      }
      if (r.kind === 'corrupt') {
        maxSeq = Math.max(maxSeq, r.header.seq);
        if (trustTail) {
          this.#report({ extentNo: e.no, offset: off, id: r.header.id, reason: r.reason, during });
        } else if (gapStart < 0) {
          gapStart = off;
        }
        dirtyPastTail = true;
        off += r.recordBytes;
        continue;
      }
      if (!r.zero) {
        dirtyPastTail = true;
        if (gapStart < 0) gapStart = off;
      }
      if (trustTail) break;
      off = r.zero ? await reader.nextNonZero(off + RECORD_ALIGN_BYTES) : off + RECORD_ALIGN_BYTES;
    }
    if (batch.length > 0) await this.#absorb(batch);
    if (dirtyPastTail || (!trustTail && tail < e.sizeBytes)) {
      // Cut the torn tail: drop the bytes and grow the file back (holes read as zeros).
      if (dirtyPastTail) {
        await e.handle.truncate(tail);
        await e.handle.allocate(e.sizeBytes);
        await e.handle.datasync();
      }
    }
    e.tailBytes = tail;
    e.indexedTailBytes = tail;
    e.hwmBytes = tail;
    return maxSeq;
  }

  /** Applies scanned records to the index: a record wins over an entry or tombstone with a lower seq. */
  async #absorb(records: { type: RecordType; id: Buffer; entry: IndexEntry }[]): Promise<void> {
    const db = this.#db!;
    const keys: Buffer[] = [];
    for (const r of records) keys.push(fragmentKey(r.id), prefixedKey(KEY_REBUILD_TOMBSTONE, r.id));
    const olds = await db.getMany(keys);
    const best = new Map<string, { seq: number; live: IndexEntry | undefined; changed: boolean }>();
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const hex = r.id.toString('hex');
      let cur = best.get(hex);
      if (cur === undefined) {
        const f = olds[2 * i];
        const t = olds[2 * i + 1];
        const fe = f === undefined ? undefined : decodeEntry(f);
        const ts = t === undefined ? 0 : decodeU64(t);
        cur = fe !== undefined && fe.seq > ts ? { seq: fe.seq, live: fe, changed: false } : { seq: ts, live: undefined, changed: false };
        best.set(hex, cur);
      }
      if (r.entry.seq <= cur.seq) continue;
      best.set(hex, { seq: r.entry.seq, live: r.type === RecordType.Put ? r.entry : undefined, changed: true });
    }
    const ops: BatchOp[] = [];
    for (const [hex, v] of best) {
      if (!v.changed) continue;
      const id = Buffer.from(hex, 'hex');
      if (v.live !== undefined) {
        ops.push({ type: 'put', key: fragmentKey(id), value: encodeEntry(v.live) });
        ops.push({ type: 'del', key: prefixedKey(KEY_REBUILD_TOMBSTONE, id) });
      } else {
        ops.push({ type: 'del', key: fragmentKey(id) });
        ops.push({ type: 'put', key: prefixedKey(KEY_REBUILD_TOMBSTONE, id), value: encodeU64(v.seq) });
      }
    }
    if (ops.length === 0) return;
    await db.batch(ops);
  }

  async #clearRebuildTombstones(): Promise<void> {
    const lo = Buffer.from([KEY_REBUILD_TOMBSTONE]);
    await this.#db!.clear({ gte: lo, lt: Buffer.from([KEY_REBUILD_TOMBSTONE + 1]) });
  }

  /** Recomputes live bytes per extent and the fragment count from the index (bounded memory). */
  async #account(): Promise<void> {
    for (const e of this.#extents.values()) e.liveBytes = 0;
    this.#fragmentCount = 0;
    const it = this.#db!.iterator({ gte: Buffer.from([KEY_FRAGMENT]), lt: Buffer.from([KEY_FRAGMENT + 1]) });
    try {
      for (;;) {
        const page = await it.nextv(1024);
        if (page.length === 0) break;
        for (const [key, value] of page) {
          const entry = decodeEntry(value);
          const e = this.#extents.get(entry.extentNo);
          this.#fragmentCount++;
          if (e === undefined) {
            this.#report({ extentNo: entry.extentNo, offset: entry.offset, id: key.subarray(1), reason: 'index names a missing extent', during: 'recovery' });
            continue;
          }
          e.liveBytes += entry.recordBytes;
        }
      }
    } finally {
      await it.close();
    }
  }

  #pickActive(): void {
    let best: Extent | undefined;
    for (const e of this.#extents.values()) {
      if (e.roomBytes() >= RECORD_ALIGN_BYTES && (best === undefined || e.no > best.no)) best = e;
    }
    this.#active = best;
  }

  // ---------------------------------------------------------------- put / delete

  /** Stores `payload` under `id`; resolves when the record is durable per the fsync policy. */
  async put(id: Uint8Array, payload: Uint8Array | readonly Uint8Array[], options: PutOptions = {}): Promise<{ seq: number }> {
    this.#checkOpen();
    const idBuf = checkId(id);
    const parts = payload instanceof Uint8Array ? [payload] : [...payload];
    const payloadBytes = byteLengthOf(parts);
    if (payloadBytes > this.payloadBytesMax) {
      throw extentErrors.create('TW_EXTENT_PAYLOAD_TOO_LARGE', `fragment of ${payloadBytes} bytes exceeds ${this.payloadBytesMax}`, {
        details: { payloadBytes, payloadBytesMax: this.payloadBytesMax },
      });
    }
    const recordBytes = recordBytesFor(idBuf.byteLength, payloadBytes);
    await this.#admission.acquire(recordBytes, options.signal, abortedError);
    try {
      const op = await this.#append(RecordType.Put, idBuf, parts, payloadBytes, recordBytes);
      return { seq: op.seq };
    } finally {
      this.#admission.release(recordBytes);
    }
  }

  /**
   * Deletes `id`: writes a tombstone, even when the index holds no entry, because an
   * unacknowledged put of the id may sit complete in an extent and an index rebuild must not
   * bring it back. Resolves true when an entry was deleted.
   */
  async delete(id: Uint8Array, options: DeleteOptions = {}): Promise<boolean> {
    this.#checkOpen();
    const idBuf = checkId(id);
    const { ifSeq } = options;
    if (ifSeq !== undefined && !Number.isSafeInteger(ifSeq)) throw invalid('ifSeq', 'must be an integer');
    const recordBytes = recordBytesFor(idBuf.byteLength, 0);
    await this.#admission.acquire(recordBytes, options.signal, abortedError);
    try {
      const guard = ifSeq === undefined ? undefined : (): boolean => this.#newestIsPut(idBuf, ifSeq);
      const op = await this.#append(RecordType.Tombstone, idBuf, [], 0, recordBytes, guard);
      return op?.deleted ?? false;
    } finally {
      this.#admission.release(recordBytes);
    }
  }

  /** Appends a record; with `guard`, only if it holds at reservation time (else undefined). */
  async #append(type: RecordType, id: Buffer, parts: Uint8Array[], payloadBytes: number, recordBytes: number): Promise<{ seq: number; deleted: boolean }>;
  async #append(type: RecordType, id: Buffer, parts: Uint8Array[], payloadBytes: number, recordBytes: number, guard: (() => boolean) | undefined): Promise<{ seq: number; deleted: boolean } | undefined>;
  async #append(type: RecordType, id: Buffer, parts: Uint8Array[], payloadBytes: number, recordBytes: number, guard?: () => boolean): Promise<{ seq: number; deleted: boolean } | undefined> {
    const op = await this.#reserve(type, id, payloadBytes, recordBytes, guard);
    if (op === undefined) return undefined;
    try {
      const header = encodeHeader({ type, seq: op.seq, id, payloadBytes });
      op.checksum = recordChecksum(header, parts);
      await op.extent.handle.writev([header, ...parts, encodeTrailer(op.checksum)], op.offset);
    } catch (err) {
      op.error = ioError(err, `write of a record to extent ${op.extent.no}`);
      if (op.error.code === 'TW_EXTENT_FULL') this.#fsFreeBytes = 0;
    }
    return this.#settle(op);
  }

  /**
   * Takes the record's place at the tail of the active extent and its sequence number, and queues
   * it as pending (unwritten): from here on it holds back the acknowledgement of later records
   * until `#settle` marks it written (or failed).
   */
  async #reserve(type: RecordType, id: Buffer, payloadBytes: number, recordBytes: number): Promise<AppendOp>;
  async #reserve(type: RecordType, id: Buffer, payloadBytes: number, recordBytes: number, guard: (() => boolean) | undefined): Promise<AppendOp | undefined>;
  async #reserve(type: RecordType, id: Buffer, payloadBytes: number, recordBytes: number, guard?: () => boolean): Promise<AppendOp | undefined> {
    const op = await this.#appendMutex.run(async () => {
      this.#checkOpen();
      // Under the append lock, so no record of the id can take a sequence number in between.
      if (guard !== undefined && !guard()) return undefined;
      // Tombstones may use the reserve: a full store must still be able to delete.
      this.#checkSpace(recordBytes, type === RecordType.Tombstone);
      let e = this.#active;
      if (e === undefined || e.roomBytes() < recordBytes) {
        if (e !== undefined) e.sealed = true;
        e = await this.#newExtent(type === RecordType.Tombstone);
        this.#active = e;
      }
      await this.#ensureHwm(e, e.tailBytes + recordBytes);
      const seq = this.#nextSeq++;
      const o: AppendOp = {
        type,
        id,
        idHex: id.toString('hex'),
        seq,
        extent: e,
        offset: e.tailBytes,
        recordBytes,
        payloadBytes,
        checksum: 0n,
        written: false,
        error: undefined,
        resolve: () => undefined,
        reject: () => undefined,
        done: undefined as unknown as Promise<boolean>,
      };
      e.tailBytes += recordBytes;
      e.minSeq = Math.min(e.minSeq, seq);
      this.#writtenSinceStatfs += recordBytes;
      this.#pending.push(o);
      return o;
    });
    if (op === undefined) return undefined;
    op.done = new Promise<boolean>((resolve, reject) => {
      op.resolve = resolve;
      op.reject = reject;
    });
    return op;
  }

  /** The record is written (or failed, `op.error`): the next flush syncs, indexes and settles it. */
  async #settle(op: AppendOp): Promise<{ seq: number; deleted: boolean }> {
    op.written = true;
    this.#scheduleFlush();
    const deleted = await op.done;
    return { seq: op.seq, deleted };
  }

  /**
   * Starts a put whose payload arrives in pieces (a storage node writing a fragment while it is
   * still coming off the network): the record's place and sequence number are taken now, its
   * header is written at once, each `write` goes to its place in the extent as it comes, and
   * `finish` writes the trailer and resolves when the record is durable, like `put`.
   *
   * Until it is finished or abandoned, the record holds back the acknowledgement of every put
   * admitted after it, so a caller must end every stream: `finish`, or `abandon` when the bytes
   * will not all come (connection lost, checksum mismatch). A stream that gets no call for
   * `putStreamIdleMs` is abandoned by the store. An abandoned record is never indexed: its place
   * stays garbage in the extent, and recovery and index rebuilds skip it by its header's length.
   */
  async beginPut(id: Uint8Array, payloadBytes: number, options: PutOptions = {}): Promise<PutStream> {
    this.#checkOpen();
    const idBuf = checkId(id);
    if (!Number.isSafeInteger(payloadBytes) || payloadBytes < 0) throw invalid('payloadBytes', 'must be a non-negative integer');
    if (payloadBytes > this.payloadBytesMax) {
      throw extentErrors.create('TW_EXTENT_PAYLOAD_TOO_LARGE', `fragment of ${payloadBytes} bytes exceeds ${this.payloadBytesMax}`, {
        details: { payloadBytes, payloadBytesMax: this.payloadBytesMax },
      });
    }
    const recordBytes = recordBytesFor(idBuf.byteLength, payloadBytes);
    await this.#admission.acquire(recordBytes, options.signal, abortedError);
    let op: AppendOp;
    try {
      op = await this.#reserve(RecordType.Put, idBuf, payloadBytes, recordBytes);
    } catch (err) {
      this.#admission.release(recordBytes);
      throw err;
    }
    const stream = new StoredPutStream(op, this.#putStreamIdleMs, this.#putStreamLifetimeMs, {
      settle: (o) => this.#settle(o),
      ioError,
      onEnd: (s) => {
        this.#streams.delete(s);
        this.#admission.release(recordBytes);
      },
    });
    this.#streams.add(stream);
    return stream;
  }

  /** Put streams begun and not yet finished or abandoned (for metrics and tests). */
  get openPutStreams(): number {
    return this.#streams.size;
  }

  /**
   * Why writes are refused, when an index batch failed (the LevelDB index can no longer be
   * trusted to take writes): reads go on; a restart re-indexes from the extents.
   */
  get writeFailure(): TwError | undefined {
    return this.#indexFailure;
  }

  /** Records acknowledged (or refused) whose index batch has not been applied yet. */
  get unindexedRecords(): number {
    return this.#indexBehind;
  }

  /** Abandons every open put stream (closing, rebuilding): their records never become visible. */
  #abandonStreams(why: string): void {
    for (const s of [...this.#streams]) void s.abandon(extentErrors.create('TW_EXTENT_ABORTED', why));
  }

  #metaOf(e: Extent): Buffer {
    return encodeExtentMeta({ tailBytes: e.indexedTailBytes, minSeq: e.minSeq, hwmBytes: e.hwmBytes });
  }

  /**
   * Moves the extent's persisted high-water mark past `endBytes` (a synced index write) before
   * anything is written there. Under the index mutex, so meta writes of one extent never reorder.
   */
  async #ensureHwm(e: Extent, endBytes: number): Promise<void> {
    if (endBytes <= e.hwmBytes) return;
    await this.#indexMutex.run(async () => {
      if (endBytes <= e.hwmBytes) return;
      const prev = e.hwmBytes;
      // An eighth of the extent ahead (at most HWM_STEP_BYTES): a few synced writes per extent.
      const step = Math.min(HWM_STEP_BYTES, Math.max(RECORD_ALIGN_BYTES, Math.floor(e.sizeBytes / 8 / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES));
      e.hwmBytes = Math.min(e.sizeBytes, endBytes + step);
      try {
        await this.#db!.put(extentKey(e.no), this.#metaOf(e), { sync: true });
      } catch (err) {
        e.hwmBytes = prev;
        throw ioError(err, `index write for extent ${e.no}`);
      }
    });
  }

  #checkSpace(recordBytes: number, tombstone: boolean): void {
    const free = this.#freeBytes(tombstone);
    if (recordBytes > free) {
      throw extentErrors.create('TW_EXTENT_FULL', `store full: ${recordBytes} bytes needed, ${Math.max(0, free)} free`, {
        details: { recordBytes, freeBytes: Math.max(0, free), capacityBytes: this.capacityBytes, reserveBytes: this.reserveBytes },
      });
    }
    if (Date.now() - this.#fsFreeAt > STATFS_REFRESH_MS) void this.#refreshStatfs(false);
  }

  /** Bytes puts may still use. One extent is kept back for compaction, which needs room to free room. */
  #freeBytes(tombstone = false): number {
    const activeRoom = this.#active?.roomBytes() ?? 0;
    const compactionReserve = tombstone ? 0 : this.extentSizeBytes;
    const capRoom = this.capacityBytes - this.#extents.size * this.extentSizeBytes - compactionReserve;
    const byCapacity = activeRoom + Math.max(0, Math.floor(capRoom / this.extentSizeBytes) * this.extentSizeBytes);
    const fsRoom = this.#fsFreeBytes - this.#writtenSinceStatfs - (tombstone ? this.reserveBytes / 2 : this.reserveBytes);
    return Math.min(byCapacity, fsRoom);
  }

  async #refreshStatfs(force: boolean): Promise<void> {
    if (!force && Date.now() - this.#fsFreeAt <= STATFS_REFRESH_MS) return;
    this.#fsFreeAt = Date.now();
    try {
      const free = await this.files.freeBytes(this.dir);
      this.#fsFreeBytes = free;
      this.#writtenSinceStatfs = 0;
    } catch {
      // keep the previous figure; the next write retries
    }
  }

  async #newExtent(bypassCapacity: boolean): Promise<Extent> {
    const no = this.#nextExtentNo;
    assert(no <= EXTENT_NO_MAX, 'extent numbers exhausted');
    if (!bypassCapacity && this.#extents.size * this.extentSizeBytes + this.extentSizeBytes > this.capacityBytes) {
      throw extentErrors.create('TW_EXTENT_FULL', 'no room for another extent', { details: { capacityBytes: this.capacityBytes } });
    }
    this.#nextExtentNo++;
    const path = join(this.dir, extentFileName(no));
    let handle;
    try {
      handle = await this.files.open(path, 'create');
    } catch (err) {
      throw ioError(err, `create extent ${no}`);
    }
    try {
      await handle.allocate(this.extentSizeBytes);
      await this.files.syncDir(this.dir);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await this.files.unlink(path).catch(() => undefined);
      throw ioError(err, `preallocate extent ${no}`);
    }
    const e = new Extent(no, path, handle, this.extentSizeBytes);
    this.#extents.set(no, e);
    return e;
  }

  // ---------------------------------------------------------------- durability and the index

  #scheduleFlush(): void {
    if (this.fsync.mode === 'group' && this.#state === 'open') {
      if (this.#flushTimer !== undefined) return;
      const waitMs = this.#lastFlushAtMs + this.fsync.intervalMs - performance.now();
      if (waitMs > 0) {
        this.#flushTimer = setTimeout(() => {
          this.#flushTimer = undefined;
          // Timers may fire up to ~1 ms early against performance.now(): check the pacing again.
          this.#scheduleFlush();
        }, Math.max(0, waitMs));
        return;
      }
    }
    this.#kickFlush();
  }

  #kickFlush(): void {
    if (this.#flushing !== undefined) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = this.#runFlush().finally(() => {
      this.#flushing = undefined;
      if (this.#flushAgain) {
        this.#flushAgain = false;
        this.#kickFlush();
      } else if (this.#pending.length > 0 && this.#pending[0]!.written) {
        this.#scheduleFlush();
      }
    });
  }

  /** Takes the longest prefix (in seq order) of written records, syncs, indexes, acknowledges. */
  async #runFlush(): Promise<void> {
    let n = 0;
    while (n < this.#pending.length && this.#pending[n]!.written) n++;
    if (n === 0) return;
    // Paces the next sync from this one's start; an empty flush (nothing written yet) syncs nothing.
    this.#lastFlushAtMs = performance.now();
    const batch = this.#pending.splice(0, n);
    this.#syncing = batch;
    try {
      await this.#syncAndAcknowledge(batch);
    } finally {
      this.#syncing = [];
    }
  }

  async #syncAndAcknowledge(batch: AppendOp[]): Promise<void> {
    if (this.fsync.mode !== 'never') {
      const extents = new Set<Extent>();
      for (const op of batch) if (op.error === undefined) extents.add(op.extent);
      await Promise.all(
        [...extents].map(async (e) => {
          if (e.syncFailed) return;
          try {
            await e.handle.datasync();
          } catch (err) {
            // After a failed fdatasync the page cache may have dropped our pages: nothing
            // written here since the last good sync can be acknowledged. Seal the extent.
            e.syncFailed = true;
            e.sealed = true;
            for (const op of batch) if (op.extent === e && op.error === undefined) op.error = ioError(err, `fdatasync of extent ${e.no}`);
          }
        }),
      );
      for (const op of batch) if (op.extent.syncFailed && op.error === undefined) op.error = extentErrors.create('TW_EXTENT_IO', `extent ${op.extent.no} failed a sync earlier`);
    }
    if (this.#indexFailure !== undefined) {
      for (const op of batch) op.reject(op.error ?? this.#indexFailure);
      return;
    }
    // Durable now: a put is acknowledged here, and its index entry follows in a batch queued
    // behind. The batch (LevelDB through the thread pool, 100-130 us here) is no part of
    // durability, and on a disk whose sync takes tens of microseconds it would be most of a
    // put's acknowledgement. (On this VM's ~0.8 ms syncs, one 256 KiB put at a time measured
    // +0-14 % in rounds alternating in one run.) A crash before the batch loses nothing: recovery
    // re-indexes every complete record past the indexed tail, and that watermark only moves with
    // the batch. Until then readers find the record in #unindexed. Tombstones resolve with
    // their batch: their answer is whether the index held the id.
    for (const op of batch) {
      if (op.error === undefined && op.type === RecordType.Put) {
        this.#unindexed.set(op.id.toString('latin1'), {
          seq: op.seq,
          entry: { extentNo: op.extent.no, offset: op.offset, payloadBytes: op.payloadBytes, recordBytes: op.recordBytes, seq: op.seq, checksum: op.checksum },
        });
      }
      this.#indexBehindByExtent.set(op.extent, (this.#indexBehindByExtent.get(op.extent) ?? 0) + 1);
    }
    this.#indexBehind += batch.length;
    // Queued now, in flush order; the body first lets the acknowledgements below go out.
    const indexed = this.#indexMutex.run(() => this.#indexBatch(batch));
    for (const op of batch) {
      if (op.error !== undefined) op.reject(op.error);
      else if (op.type === RecordType.Put) op.resolve(false);
    }
    if (this.#indexBehind > INDEX_BEHIND_RECORDS_MAX) await indexed;
  }

  /** Applies a flushed batch to the index, behind its acknowledgement (see #runFlush). */
  async #indexBatch(batch: AppendOp[]): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    let results: Map<AppendOp, boolean> | undefined;
    if (this.#indexFailure === undefined) {
      try {
        await this.#indexHooks?.beforeBatch?.();
        results = await this.#applyBatch(batch);
      } catch (err) {
        // The acknowledged puts stay served from #unindexed and their extents out of compaction;
        // later batches are not applied (the watermark must not pass these records), nothing
        // more is acknowledged, and close() records no clean shutdown: the next open re-indexes
        // everything past the last good batch.
        this.#indexFailure = ioError(err, 'index update');
      }
    }
    for (const op of batch) {
      if (op.type === RecordType.Put) {
        if (results === undefined) continue;
        const k = op.id.toString('latin1');
        if (this.#unindexed.get(k)?.seq === op.seq) this.#unindexed.delete(k);
      } else if (op.error === undefined) {
        if (results === undefined) op.reject(this.#indexFailure);
        else op.resolve(results.get(op) ?? false);
      }
    }
    if (results === undefined) return;
    this.#indexBehind -= batch.length;
    for (const op of batch) {
      const left = this.#indexBehindByExtent.get(op.extent)! - 1;
      if (left === 0) this.#indexBehindByExtent.delete(op.extent);
      else this.#indexBehindByExtent.set(op.extent, left);
    }
  }

  /**
   * Whether the newest record of `id` is the put `seq`: records being written or synced first
   * (newest last), then acknowledged but unindexed puts, then the index. A tombstone whose index
   * batch is still queued is missed (the older put still shows): a second delete then writes a
   * second tombstone, which is harmless.
   */
  #newestIsPut(id: Buffer, seq: number): boolean {
    for (const ops of [this.#pending, this.#syncing]) {
      for (let i = ops.length - 1; i >= 0; i--) {
        const o = ops[i]!;
        if (o.error === undefined && o.id.equals(id)) return o.type === RecordType.Put && o.seq === seq;
      }
    }
    const e = this.#entryOf(id, fragmentKey(id));
    return e !== undefined && e.seq === seq;
  }

  /** The index entry of `id`: an acknowledged put not yet indexed first, else the index's. */
  #entryOf(idBuf: Buffer, key: Buffer): IndexEntry | undefined {
    if (this.#unindexed.size > 0) {
      const u = this.#unindexed.get(idBuf.toString('latin1'));
      if (u !== undefined) return u.entry;
    }
    const raw = this.#indexGet(key);
    return raw === undefined ? undefined : decodeEntry(raw);
  }

  /** Writes one index batch for records in seq order; returns, per tombstone, whether it deleted. */
  async #applyBatch(batch: AppendOp[]): Promise<Map<AppendOp, boolean>> {
    const db = this.#db!;
    const good = batch.filter((o) => o.error === undefined);
    // Synchronous lookups: answered from LevelDB's caches in microseconds, where getMany's thread-pool
    // round trip sits on every acknowledgement's path (see #indexGet).
    const olds = good.map((o) => db.getSync(fragmentKey(o.id)));
    const current = new Map<string, IndexEntry | undefined>();
    const results = new Map<AppendOp, boolean>();
    const ops: BatchOp[] = [];
    const liveDelta = new Map<Extent, number>();
    let countDelta = 0;
    const bump = (extentNo: number, by: number): void => {
      const e = this.#extents.get(extentNo);
      if (e !== undefined) liveDelta.set(e, (liveDelta.get(e) ?? 0) + by);
    };
    for (let i = 0; i < good.length; i++) {
      const op = good[i]!;
      const raw = olds[i];
      const prev = current.has(op.idHex) ? current.get(op.idHex) : raw === undefined ? undefined : decodeEntry(raw);
      assert(prev === undefined || prev.seq < op.seq, () => `index entry seq ${prev!.seq} >= new record seq ${op.seq}`);
      if (prev !== undefined) bump(prev.extentNo, -prev.recordBytes);
      if (op.type === RecordType.Put) {
        const entry: IndexEntry = {
          extentNo: op.extent.no,
          offset: op.offset,
          payloadBytes: op.payloadBytes,
          recordBytes: op.recordBytes,
          seq: op.seq,
          checksum: op.checksum,
        };
        ops.push({ type: 'put', key: fragmentKey(op.id), value: encodeEntry(entry) });
        current.set(op.idHex, entry);
        bump(op.extent.no, op.recordBytes);
        if (prev === undefined) countDelta++;
      } else {
        if (prev !== undefined) {
          ops.push({ type: 'del', key: fragmentKey(op.id) });
          countDelta--;
        }
        current.set(op.idHex, undefined);
        results.set(op, prev !== undefined);
      }
    }
    // The watermark covers failed records too: recovery must never resurrect them.
    const touched = new Map<Extent, number>();
    for (const o of batch) touched.set(o.extent, Math.max(touched.get(o.extent) ?? 0, o.offset + o.recordBytes));
    for (const [e, tail] of touched) {
      ops.push({ type: 'put', key: extentKey(e.no), value: encodeExtentMeta({ tailBytes: Math.max(tail, e.indexedTailBytes), minSeq: e.minSeq, hwmBytes: e.hwmBytes }) });
    }
    const applied = batch[batch.length - 1]!.seq;
    ops.push({ type: 'put', key: metaKey('applied-seq'), value: encodeU64(applied) });
    await db.batch(ops);
    for (const [e, tail] of touched) e.indexedTailBytes = Math.max(e.indexedTailBytes, tail);
    this.#appliedSeq = Math.max(this.#appliedSeq, applied);
    for (const [e, d] of liveDelta) e.liveBytes += d;
    this.#fragmentCount += countDelta;
    for (const e of liveDelta.keys()) if (this.#isDead(e, false)) this.#scheduleReclaim();
    return results;
  }

  // ---------------------------------------------------------------- reads

  /** Reads `id`; undefined when absent. Throws TW_EXTENT_CORRUPT rather than return bad bytes. */
  async get(id: Uint8Array, options: GetOptions = {}): Promise<GetResult | undefined> {
    this.#checkOpen();
    const idBuf = checkId(id);
    const key = fragmentKey(idBuf);
    let retiredSeen: IndexEntry | undefined;
    for (let attempt = 0; attempt < GET_RETRIES_MAX; attempt++) {
      if (options.signal?.aborted) throw abortedError();
      const entry = this.#entryOf(idBuf, key);
      if (entry === undefined) return undefined;
      const e = this.#extents.get(entry.extentNo);
      if (e === undefined || e.retired) {
        // Raced compaction: it switches the index before it retires an extent, so a second look
        // finds the new place. The same retired place twice is an entry compaction did not move
        // (its record's header was unreadable, so the scan could not tell it was live): lost.
        const again = retiredSeen !== undefined && retiredSeen.extentNo === entry.extentNo && retiredSeen.offset === entry.offset && retiredSeen.seq === entry.seq;
        if (this.#retired.has(entry.extentNo) && !again) {
          retiredSeen = entry;
          continue;
        }
        const reason = this.#retired.has(entry.extentNo) ? 'extent compacted away without this record' : 'extent missing';
        const report: CorruptionReport = { extentNo: entry.extentNo, offset: entry.offset, id: idBuf, reason, during: 'get' };
        this.#report(report);
        throw extentErrors.create('TW_EXTENT_CORRUPT', `fragment's extent ${entry.extentNo}: ${reason}`, { details: { ...report, id: idBuf.toString('hex') } });
      }
      e.acquire();
      try {
        return await this.#readRecord(e, entry, idBuf, options.into);
      } finally {
        e.release();
      }
    }
    throw extentErrors.create('TW_EXTENT_BUSY', 'read kept racing compaction', { details: { id: idBuf.toString('hex') } });
  }

  async #readRecord(e: Extent, entry: IndexEntry, id: Buffer, into: Uint8Array | undefined): Promise<GetResult> {
    let dest: Buffer;
    if (into !== undefined) {
      if (into.byteLength < entry.payloadBytes) {
        throw extentErrors.create('TW_EXTENT_BUFFER_TOO_SMALL', `buffer of ${into.byteLength} bytes for a ${entry.payloadBytes}-byte fragment`, {
          details: { bufferBytes: into.byteLength, sizeBytes: entry.payloadBytes },
        });
      }
      dest = Buffer.from(into.buffer, into.byteOffset, entry.payloadBytes);
    } else {
      dest = Buffer.allocUnsafe(entry.payloadBytes);
    }
    const headerBytes = headerBytesFor(id.byteLength);
    const header = Buffer.allocUnsafe(headerBytes);
    const trailer = Buffer.allocUnsafe(RECORD_TRAILER_BYTES);
    const want = headerBytes + entry.payloadBytes + RECORD_TRAILER_BYTES;
    let n: number;
    let sum: bigint;
    try {
      ({ n, sum } = await this.#readAndHash(e, entry.offset, header, dest, trailer));
    } catch (err) {
      throw ioError(err, `read of extent ${e.no} at ${entry.offset}`);
    }
    let reason: string | undefined;
    if (n < want) reason = 'short read';
    else {
      const parsed = parseHeader(header, headerBytes, e.sizeBytes - entry.offset);
      if (!parsed.ok) reason = parsed.reason;
      else if (parsed.header.type !== RecordType.Put) reason = 'not a put record';
      else if (!parsed.header.id.equals(id)) reason = 'record holds another fragment id';
      else if (parsed.header.seq !== entry.seq) reason = 'sequence number differs from the index';
      else if (parsed.header.payloadBytes !== entry.payloadBytes) reason = 'length differs from the index';
      else {
        if (sum !== trailer.readBigUInt64LE(0)) reason = 'trailing checksum mismatch';
        else if (sum !== entry.checksum) reason = 'checksum differs from the index';
      }
    }
    if (reason !== undefined) {
      const report: CorruptionReport = { extentNo: e.no, offset: entry.offset, id, reason, during: 'get' };
      this.#report(report);
      throw extentErrors.create('TW_EXTENT_CORRUPT', `fragment failed verification: ${reason}`, {
        details: { extentNo: e.no, offset: entry.offset, id: id.toString('hex'), reason },
      });
    }
    return { bytes: dest, seq: entry.seq };
  }

  /**
   * Reads a record (header, payload into `dest`, trailer) in one preadv and hashes header +
   * payload. (Reading large payloads in 1 MiB pieces, each hashed while in cache, was measured
   * and cost more CPU per GB here, 0.17-0.23 vs 0.14-0.16 CPU-s/GB at 8 MiB x16: more
   * thread-pool round trips than the memory pass it saves.)
   */
  async #readAndHash(e: Extent, offset: number, header: Buffer, dest: Buffer, trailer: Buffer): Promise<{ n: number; sum: bigint }> {
    const n = await e.handle.readv([header, dest, trailer], offset, { latencySensitive: true });
    return { n, sum: recordChecksum(header, [dest]) };
  }

  /** What the index knows about `id`, without reading the record. */
  async stat(id: Uint8Array): Promise<FragmentStat | undefined> {
    this.#checkOpen();
    const idBuf = checkId(id);
    const e = this.#entryOf(idBuf, fragmentKey(idBuf));
    if (e === undefined) return undefined;
    return { id: idBuf, sizeBytes: e.payloadBytes, seq: e.seq, extentNo: e.extentNo, offset: e.offset, checksum: e.checksum };
  }

  /** Ids in byte order, optionally under a prefix, one bounded page at a time. */
  async list(options: ListOptions = {}): Promise<ListPage> {
    this.#checkOpen();
    const limit = options.limit ?? LIST_LIMIT_DEFAULT;
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) throw invalid('limit', `must be an integer in [1, ${LIST_LIMIT_MAX}]`);
    const lo = fragmentKey(options.prefix ?? new Uint8Array(0));
    const hi = prefixEnd(lo)!;
    const range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit: number } = { lt: hi, limit };
    if (options.after !== undefined && Buffer.compare(fragmentKey(options.after), lo) >= 0) range.gt = fragmentKey(options.after);
    else range.gte = lo;
    // Puts acknowledged before this call are in the index once the batches queued so far apply.
    await this.indexed();
    this.#checkOpen();
    const it = this.#db!.iterator(range);
    const entries: ListPage['entries'] = [];
    try {
      // nextv may return fewer entries than asked (it hands out what its read-ahead holds):
      // keep asking until the page is full or the range is exhausted (an empty answer).
      while (entries.length < limit) {
        const page = await it.nextv(limit - entries.length);
        if (page.length === 0) break;
        for (const [k, v] of page) {
          const e = decodeEntry(v);
          entries.push({ id: Buffer.from(k.subarray(1)), sizeBytes: e.payloadBytes, seq: e.seq });
        }
      }
    } finally {
      await it.close();
    }
    if (options.signal?.aborted) throw abortedError();
    const last = entries[entries.length - 1];
    return entries.length === limit && last !== undefined ? { entries, next: last.id } : { entries };
  }

  /**
   * The highest sequence number handed out so far (0 for an empty store). Sequence numbers grow
   * with every put and delete and survive restarts and compaction, so a caller that notes
   * (time, lastSeq) knows that every record with a seq at or below it was written by then: a
   * storage node ages its fragments this way without a timestamp in the record format.
   */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /**
   * Resolves once every put acknowledged so far is in the index: acknowledged puts are readable at
   * once (get, stat), and counted by capacity() from then on.
   */
  async indexed(): Promise<void> {
    await this.#indexMutex.run(async () => undefined);
  }

  /** Bytes live / garbage / free, as of the index: a put counts once its batch is applied (indexed()). */
  capacity(): CapacityReport {
    let live = 0;
    let used = 0;
    for (const e of this.#extents.values()) {
      live += e.liveBytes;
      used += e.tailBytes;
    }
    return {
      liveBytes: live,
      garbageBytes: used - live,
      freeBytes: Math.max(0, this.#freeBytes()),
      extentCount: this.#extents.size,
      extentSizeBytes: this.extentSizeBytes,
      fragmentCount: this.#fragmentCount,
    };
  }

  /** Per-extent figures (for metrics and tests). */
  extents(): { extentNo: number; tailBytes: number; liveBytes: number; garbageBytes: number; active: boolean }[] {
    return [...this.#extents.values()]
      .sort((a, b) => a.no - b.no)
      .map((e) => ({ extentNo: e.no, tailBytes: e.tailBytes, liveBytes: e.liveBytes, garbageBytes: e.garbageBytes, active: e === this.#active }));
  }

  // ---------------------------------------------------------------- compaction

  /**
   * Rewrites extents whose garbage ratio reaches the threshold: live records (and tombstones that
   * still shadow older puts) are copied to a new extent, synced, the index entries switched in one
   * batch (only where they still point at the old copy), and the old file deleted. Reads go on: a
   * read that looked up the old place either finishes on the old file (kept open until it is done)
   * or retries on the new one.
   */
  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    this.#checkOpen();
    const ratio = options.garbageRatioMin ?? this.garbageRatioMin;
    return this.#compactMutex.run(async () => {
      const result: CompactResult = { extentsCompacted: 0, bytesReclaimed: 0, recordsMoved: 0 };
      // Extents with records not yet written, synced or indexed: their liveness is not known yet.
      const busy = new Set<Extent>([...this.#pending.map((o) => o.extent), ...this.#syncing.map((o) => o.extent), ...this.#indexBehindByExtent.keys()]);
      const candidates = [...this.#extents.values()]
        .filter((e) => e !== this.#active && !e.compactionOutput && !e.retired && !busy.has(e) && e.tailBytes > 0)
        .filter((e) => (e.garbageBytes - e.pinnedBytes) / e.tailBytes >= ratio)
        .sort((a, b) => b.garbageBytes - a.garbageBytes)
        .slice(0, COMPACTION_EXTENTS_MAX);
      const buf = Buffer.allocUnsafe(SCAN_BUFFER_BYTES);
      for (const src of candidates) {
        if (this.#state !== 'open') break;
        if (options.signal?.aborted) throw abortedError();
        const before = src.tailBytes;
        let moved;
        try {
          moved = await this.#compactOne(src, buf);
        } catch (err) {
          // The output's state is unknown: never write to it again; its unindexed copies are
          // garbage, and the source stays in place.
          if (this.#compactionOut !== undefined) this.#compactionOut.sealed = true;
          this.#compactionOut = undefined;
          throw err;
        }
        result.extentsCompacted++;
        result.recordsMoved += moved.records;
        result.bytesReclaimed += before - moved.bytes;
      }
      return result;
    });
  }

  /**
   * Whether `e` holds no live record and enough bytes to be worth dropping at once. `settled`:
   * also no record of it waits for its index batch (acknowledged puts there are live, not yet
   * counted); #applyBatch asks without it, as its own batch is still counted then.
   */
  #isDead(e: Extent, settled = true): boolean {
    return (
      this.#reclaimDeadExtents &&
      e.liveBytes === 0 &&
      !(settled && this.#indexBehindByExtent.has(e)) &&
      !this.#syncing.some((o) => o.extent === e) &&
      !e.compactionOutput &&
      !e.retired &&
      e.tailBytes >= Math.min(DEAD_EXTENT_RECLAIM_BYTES_MIN, e.sizeBytes / 2)
    );
  }

  /**
   * Drops dead extents soon (after the current batch's callers have run): seals the active
   * extent if it is dead, then compacts with a garbage ratio of 1, which copies nothing but the
   * tombstones that still shadow older records, and deletes the files. An extent that took a new
   * record meanwhile is no longer dead and stays (sealed, if it was the active one).
   */
  #scheduleReclaim(): void {
    if (this.#reclaimScheduled || this.#state !== 'open') return;
    this.#reclaimScheduled = true;
    setImmediate(() => {
      this.#reclaimScheduled = false;
      if (this.#state !== 'open') return;
      void this.#appendMutex
        .run(async () => {
          const a = this.#active;
          if (a !== undefined && this.#isDead(a)) {
            a.sealed = true;
            this.#active = undefined;
          }
        })
        .then(() => this.compact({ garbageRatioMin: 1 }))
        .then((r) => this.#options.onReclaim?.(r))
        .catch(() => undefined); // closed meanwhile, or an I/O error the next compaction reports
    });
  }

  async #compactOne(src: Extent, buf: Buffer): Promise<{ records: number; bytes: number }> {
    const db = this.#db!;
    const reader = new ExtentReader(src.handle, src.tailBytes, buf);
    const moved: { id: Buffer; oldOffset: number; entry: IndexEntry; out: Extent }[] = [];
    const outs = new Set<Extent>();
    const corruptLive: { id: Buffer; offset: number; seq: number }[] = [];
    let copiedBytes = 0;
    let pinned = 0;
    for (let off = 0; off < src.tailBytes; ) {
      const head = await reader.view(off, RECORD_ALIGN_BYTES);
      const parsed = parseHeader(head, head.byteLength, src.tailBytes - off);
      if (!parsed.ok) {
        off += RECORD_ALIGN_BYTES;
        continue;
      }
      const h = parsed.header;
      const rb = recordBytesFor(h.id.byteLength, h.payloadBytes);
      let keep = false;
      if (h.type === RecordType.Put) {
        // Synchronous, as on the read path (#indexGet): a thread-pool round trip per record cost
        // more of the event loop than the lookup itself.
        const raw = this.#indexGet(fragmentKey(h.id));
        const cur = raw === undefined ? undefined : decodeEntry(raw);
        keep = cur !== undefined && cur.extentNo === src.no && cur.offset === off;
      } else {
        // A tombstone is needed while an older record of any id might live in another extent.
        for (const e of this.#extents.values()) if (e !== src && !e.retired && e.minSeq < h.seq) keep = true;
      }
      if (!keep) {
        off += rb;
        continue;
      }
      let out = this.#compactionOut;
      if (out === undefined || out.roomBytes() < rb) {
        if (out !== undefined) {
          out.sealed = true;
        }
        out = await this.#newExtent(true);
        out.compactionOutput = true;
        this.#compactionOut = out;
      }
      await this.#ensureHwm(out, out.tailBytes + rb);
      const outOffset = out.tailBytes;
      out.tailBytes += rb;
      const target = out;
      outs.add(target);
      let r;
      try {
        r = await reader.recordAt(off, async (chunk, rel) => {
          await target.handle.writev([chunk], outOffset + rel);
        });
      } catch (err) {
        throw ioError(err, `compaction of extent ${src.no}`);
      }
      if (r.kind === 'record') {
        target.minSeq = Math.min(target.minSeq, h.seq);
        copiedBytes += rb;
        if (h.type === RecordType.Put) {
          moved.push({
            id: h.id,
            oldOffset: off,
            out: target,
            entry: { extentNo: target.no, offset: outOffset, payloadBytes: h.payloadBytes, recordBytes: rb, seq: h.seq, checksum: r.checksum },
          });
        } else {
          pinned += rb;
        }
      } else {
        this.#report({ extentNo: src.no, offset: off, id: h.id, reason: r.kind === 'corrupt' ? r.reason : r.reason, during: 'compaction' });
        if (h.type === RecordType.Put) corruptLive.push({ id: h.id, offset: off, seq: h.seq });
      }
      off += rb;
    }
    for (const out of outs) {
      try {
        await out.handle.datasync();
      } catch (err) {
        throw ioError(err, `fdatasync of compaction output ${out.no}`);
      }
    }
    await this.#indexMutex.run(async () => {
      const keys = [...moved.map((m) => fragmentKey(m.id)), ...corruptLive.map((c) => fragmentKey(c.id))];
      const olds = keys.length === 0 ? [] : await db.getMany(keys);
      const ops: BatchOp[] = [];
      const liveDelta = new Map<Extent, number>();
      let countDelta = 0;
      moved.forEach((m, i) => {
        const raw = olds[i];
        const cur = raw === undefined ? undefined : decodeEntry(raw);
        if (cur === undefined || cur.extentNo !== src.no || cur.offset !== m.oldOffset || cur.seq !== m.entry.seq) return; // changed meanwhile
        ops.push({ type: 'put', key: fragmentKey(m.id), value: encodeEntry(m.entry) });
        liveDelta.set(m.out, (liveDelta.get(m.out) ?? 0) + m.entry.recordBytes);
      });
      corruptLive.forEach((c, j) => {
        const raw = olds[moved.length + j];
        const cur = raw === undefined ? undefined : decodeEntry(raw);
        if (cur === undefined || cur.extentNo !== src.no || cur.offset !== c.offset) return;
        ops.push({ type: 'del', key: fragmentKey(c.id) }); // lost: never served; repair re-puts it
        countDelta--;
      });
      for (const out of outs) ops.push({ type: 'put', key: extentKey(out.no), value: encodeExtentMeta({ tailBytes: out.tailBytes, minSeq: out.minSeq, hwmBytes: out.hwmBytes }) });
      ops.push({ type: 'del', key: extentKey(src.no) });
      // Synced: the old file is deleted next, so this switch must not be lost to a power cut
      // (put batches need no sync: the extents they describe are synced and rescanned on open).
      await db.batch(ops, { sync: true });
      for (const out of outs) out.indexedTailBytes = out.tailBytes;
      for (const [e, d] of liveDelta) e.liveBytes += d;
      this.#fragmentCount += countDelta;
      if (this.#compactionOut !== undefined) this.#compactionOut.pinnedBytes += pinned;
      // Retire under the index mutex: no reader can find the old place in the index any more.
      src.retired = true;
      this.#extents.delete(src.no);
      this.#retired.add(src.no);
    });
    try {
      await this.files.unlink(src.path);
      await this.files.syncDir(this.dir);
    } finally {
      src.closeWhenIdle();
    }
    return { records: moved.length, bytes: copiedBytes };
  }

  // ---------------------------------------------------------------- rebuild / close

  /**
   * Rebuilds the index from the extents (latest record per id wins; tombstones delete). Waits for
   * pending writes first; other operations must not run meanwhile.
   */
  async rebuildIndex(): Promise<void> {
    this.#checkOpen();
    this.#abandonStreams('index rebuild started');
    await this.#drain();
    await this.#compactMutex.run(() =>
      this.#appendMutex.run(() =>
        this.#indexMutex.run(async () => {
          for (const e of this.#extents.values()) e.sealed = e.sealed || e.syncFailed;
          await this.#rebuild();
          await this.#account();
        }),
      ),
    );
  }

  /** Waits until every admitted put/delete has settled. */
  async #drain(): Promise<void> {
    for (let i = 0; i < 1_000_000 && (this.#pending.length > 0 || this.#flushing !== undefined); i++) {
      if (this.#flushTimer !== undefined) {
        clearTimeout(this.#flushTimer);
        this.#flushTimer = undefined;
      }
      this.#kickFlush();
      await this.#flushing;
      if (this.#pending.length > 0 && !this.#pending[0]!.written) await new Promise((r) => setImmediate(r));
    }
    // And the index batches behind the acknowledgements (failed ones included: they settle too).
    await this.indexed();
  }

  /**
   * Finishes pending writes, marks a clean shutdown (so the next open skips the tail scan) and
   * releases the folder. Safe to call after I/O failures: resources are released regardless.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closing';
    this.#admission.rejectAll(extentErrors.create('TW_EXTENT_CLOSED', 'store closed'));
    this.#abandonStreams('store closed');
    if (this.#compactTimer !== undefined) clearInterval(this.#compactTimer);
    let clean = wasOpen;
    try {
      await this.#drain();
      await this.#compactMutex.run(async () => undefined);
      await this.#appendMutex.run(async () => undefined);
      // A reservation that held the append lock when closing began (waiting for a new extent or
      // a watermark write) has queued its record since: settle and index it too, or the clean
      // marker below would name a tail past an acknowledged record the index does not hold.
      await this.#drain();
      for (const e of this.#extents.values()) {
        if (e.syncFailed) clean = false;
        else await e.handle.datasync();
      }
    } catch {
      clean = false;
    }
    // Acknowledged puts whose index batch failed are only in the extents: the next open must scan.
    if (this.#indexFailure !== undefined) clean = false;
    if (clean && this.#db !== undefined) {
      try {
        const ops: BatchOp[] = [...this.#extents.values()].map((e) => ({
          type: 'put' as const,
          key: extentKey(e.no),
          value: encodeExtentMeta({ tailBytes: e.tailBytes, minSeq: e.minSeq, hwmBytes: Math.max(e.hwmBytes, e.tailBytes) }),
        }));
        ops.push({ type: 'put', key: metaKey('applied-seq'), value: encodeU64(this.#appliedSeq) });
        ops.push({ type: 'put', key: metaKey('clean'), value: Buffer.from([1]) });
        await this.#db.batch(ops);
      } catch {
        // not clean after all: the next open scans the tails
      }
    }
    await this.#closeResources();
  }

  async #closeResources(): Promise<void> {
    this.#state = 'closed';
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    for (const op of this.#pending.splice(0)) op.reject(extentErrors.create('TW_EXTENT_CLOSED', 'store closed before the write was durable'));
    for (const e of this.#extents.values()) e.closeWhenIdle();
    this.#extents.clear();
    try {
      await this.#db?.close();
    } catch {
      // closing anyway
    }
    this.#lock?.release();
    this.#lock = undefined;
  }

  /**
   * One index lookup, synchronous: LevelDB answers from its block cache or the page cache in
   * ~10 us, where the async get's round trip through the thread pool costs 45-115 us of this
   * thread's time (measured: 1 MiB GETs spent more CPU in the async get than in the checksum).
   * A lookup that misses both caches blocks the loop for one disk read (~100 us here); the index
   * of a full node (about 100 bytes a fragment) stays in memory in practice.
   */
  #indexGet(key: Buffer): Buffer | undefined {
    try {
      return this.#db!.getSync(key);
    } catch (err) {
      this.#checkOpen(); // closed meanwhile: say so
      throw ioError(err, 'index read');
    }
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw extentErrors.create('TW_EXTENT_CLOSED', `store ${this.dir} is ${this.#state}`);
  }

  #report(r: CorruptionReport): void {
    try {
      this.#options.onCorrupt?.(r);
    } catch {
      // a failing listener must not turn a read error into something else
    }
  }
}

function checkId(id: Uint8Array): Buffer {
  if (!(id instanceof Uint8Array) || id.byteLength === 0 || id.byteLength > ID_BYTES_MAX) {
    throw extentErrors.create('TW_EXTENT_ID_INVALID', `fragment id must be 1..${ID_BYTES_MAX} bytes`, { details: { idBytes: id?.byteLength } });
  }
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength);
}

function invalid(field: string, why: string): TwError {
  return extentErrors.create('TW_EXTENT_ARGUMENT_INVALID', `${field} ${why}`, { details: { field } });
}

function abortedError(): TwError {
  return extentErrors.create('TW_EXTENT_ABORTED', 'aborted by the caller');
}

function ioError(err: unknown, what: string): TwError {
  if (isTwError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return extentErrors.create('TW_EXTENT_FULL', `${what}: file system full`, { cause: err, details: { errno: code } });
  return extentErrors.create('TW_EXTENT_IO', `${what} failed${code ? ` (${code})` : ''}`, { cause: err, details: { errno: code } });
}


interface StreamHooks {
  settle: (op: AppendOp) => Promise<{ seq: number; deleted: boolean }>;
  ioError: (err: unknown, what: string) => TwError;
  onEnd: (s: StoredPutStream) => void;
}

/** The store's side of a PutStream. */
class StoredPutStream implements PutStream {
  readonly payloadBytes: number;
  receivedBytes = 0;
  abandoned = false;
  readonly #op: AppendOp;
  readonly #hash = new Checksum64Stream();
  readonly #headerBytes: number;
  /** Payload writes start only once the header is written: a piece on disk implies its header. */
  readonly #headerWritten: Promise<void>;
  readonly #inflight = new Set<Promise<void>>();
  #writeError: unknown;
  #state: 'open' | 'finishing' | 'ended' = 'open';
  #abandoning: Promise<void> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #lifetimeTimer: NodeJS.Timeout | undefined;
  readonly #idleMs: number;
  readonly #hooks: StreamHooks;

  constructor(op: AppendOp, idleMs: number, lifetimeMs: number, hooks: StreamHooks) {
    this.#op = op;
    this.#hooks = hooks;
    this.#idleMs = idleMs;
    this.#lifetimeTimer = setTimeout(() => {
      this.#lifetimeTimer = undefined;
      void this.abandon(extentErrors.create('TW_EXTENT_ABORTED', `put stream not finished ${lifetimeMs} ms after it began`));
    }, lifetimeMs);
    this.#lifetimeTimer.unref();
    this.payloadBytes = op.payloadBytes;
    const header = encodeHeader({ type: RecordType.Put, seq: op.seq, id: op.id, payloadBytes: op.payloadBytes });
    this.#headerBytes = header.byteLength;
    this.#hash.update(header);
    this.#headerWritten = this.#track(op.extent.handle.writev([header], op.offset));
    this.#armIdle();
  }

  write(chunk: Uint8Array, offsetInPayload: number): void {
    if (this.abandoned) throw extentErrors.create('TW_EXTENT_ABORTED', 'put stream was abandoned');
    if (this.#state !== 'open') throw invalid('write', 'after finish');
    if (offsetInPayload !== this.receivedBytes) throw invalid('offsetInPayload', `must be ${this.receivedBytes} (pieces come in order), got ${offsetInPayload}`);
    if (this.receivedBytes + chunk.byteLength > this.payloadBytes) throw invalid('chunk', `runs past the announced ${this.payloadBytes} bytes`);
    if (chunk.byteLength === 0) return;
    this.#hash.update(chunk);
    const position = this.#op.offset + this.#headerBytes + this.receivedBytes;
    this.receivedBytes += chunk.byteLength;
    // The last piece carries the trailer in the same pwritev: one write less after the last byte.
    const buffers = this.receivedBytes === this.payloadBytes ? [chunk, this.#trailer()] : [chunk];
    const handle = this.#op.extent.handle;
    this.#track(this.#headerWritten.then(() => (this.#writeError === undefined && !this.abandoned ? handle.writev(buffers, position) : undefined)));
    this.#armIdle();
  }

  async finish(): Promise<{ seq: number }> {
    if (this.abandoned) throw extentErrors.create('TW_EXTENT_ABORTED', 'put stream was abandoned');
    if (this.#state !== 'open') throw invalid('finish', 'called twice');
    if (this.receivedBytes !== this.payloadBytes) {
      const err = invalid('finish', `after ${this.receivedBytes} of ${this.payloadBytes} payload bytes`);
      await this.abandon(err);
      throw err;
    }
    this.#state = 'finishing';
    this.#clearTimers();
    const op = this.#op;
    if (this.payloadBytes === 0) {
      const trailer = this.#trailer();
      this.#track(this.#headerWritten.then(() => (this.#writeError === undefined ? op.extent.handle.writev([trailer], op.offset + this.#headerBytes) : undefined)));
    }
    await this.#quiesce();
    if (this.abandoned) {
      // abandoned (store closing, idle bound) while the last pieces were being written
      op.error = extentErrors.create('TW_EXTENT_ABORTED', 'put stream was abandoned');
    } else if (this.#writeError !== undefined) {
      op.error = this.#hooks.ioError(this.#writeError, `write of a record to extent ${op.extent.no}`);
    }
    this.#state = 'ended';
    try {
      const { seq } = await this.#hooks.settle(op);
      return { seq };
    } finally {
      this.#hooks.onEnd(this);
    }
  }

  abandon(reason?: unknown): Promise<void> {
    if (this.#abandoning !== undefined) return this.#abandoning;
    if (this.#state === 'ended') return Promise.resolve();
    this.abandoned = true;
    this.#clearTimers();
    const finishing = this.#state === 'finishing';
    this.#abandoning = (async () => {
      await this.#quiesce();
      if (finishing) return; // finish() sees `abandoned` after its own wait and settles the op
      this.#state = 'ended';
      const op = this.#op;
      op.error = extentErrors.create('TW_EXTENT_ABORTED', 'put stream abandoned before it was finished', { cause: reason });
      // Settled through the flush like a failed write: the watermark covers it, so recovery never
      // brings it back, and the puts after it are acknowledged.
      void this.#hooks.settle(op).catch(() => undefined).finally(() => this.#hooks.onEnd(this));
    })();
    return this.#abandoning;
  }

  /** The trailing checksum, once every payload byte went through the hash. */
  #trailer(): Buffer {
    this.#op.checksum = this.#hash.digest();
    return encodeTrailer(this.#op.checksum);
  }

  /** Waits until no write of this stream is in flight. */
  async #quiesce(): Promise<void> {
    for (let i = 0; i < 1_000_000 && this.#inflight.size > 0; i++) await Promise.all([...this.#inflight]);
  }

  #track(p: Promise<unknown>): Promise<void> {
    const t: Promise<void> = p.then(
      () => undefined,
      (err: unknown) => {
        this.#writeError ??= err;
      },
    );
    this.#inflight.add(t);
    void t.finally(() => this.#inflight.delete(t));
    return t;
  }

  #armIdle(): void {
    this.#clearIdle();
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      void this.abandon(extentErrors.create('TW_EXTENT_ABORTED', `put stream idle for ${this.#idleMs} ms`));
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  #clearIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /** Both bounds off: the stream is finishing or abandoned. */
  #clearTimers(): void {
    this.#clearIdle();
    if (this.#lifetimeTimer !== undefined) clearTimeout(this.#lifetimeTimer);
    this.#lifetimeTimer = undefined;
  }
}
