/** Every bound of @tw/extent-store in one place. */

/** Longest fragment id, in bytes (namespace + key hash + version + fragment index fit in ~600). */
export const ID_BYTES_MAX = 1024;

/** Records start on this boundary, so direct I/O can be added without a format change. */
export const RECORD_ALIGN_BYTES = 4096;

/** Default size of one extent file. */
export const EXTENT_SIZE_BYTES_DEFAULT = 1024 * 1024 * 1024;
/** Smallest extent accepted (tests use small ones). */
export const EXTENT_SIZE_BYTES_MIN = 64 * 1024;
/** Largest extent: offsets stay far below 2^53. */
export const EXTENT_SIZE_BYTES_MAX = 64 * 1024 * 1024 * 1024;

/** Default largest fragment accepted by put (also capped by the extent size). */
export const PAYLOAD_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;

/**
 * Group commit: default least time between the starts of two fdatasyncs. 0 would start a sync as
 * soon as the previous one ends: single puts made back to back in process got faster (1.3-2.0 ->
 * 0.7-1.0 ms p50), but over the network one put at a time measured the same and 256 KiB puts at
 * 16 in flight 1-6 % slower in 7 pairs of 7 (more syncs, each a thread-pool hand-off and an index
 * batch). See docs/storage-node.md, "What a put goes through".
 */
export const GROUP_COMMIT_MS_DEFAULT = 1;
export const GROUP_COMMIT_MS_MAX = 1000;

/** Appends written but not yet acknowledged: bounds memory the caller's buffers pin. */
export const APPEND_INFLIGHT_MAX = 1024;
export const APPEND_INFLIGHT_BYTES_MAX = 512 * 1024 * 1024;
/**
 * Records acknowledged (durable in their extents) whose index batch has not been applied yet, at
 * most; past it a flush waits for the index before the next one starts. Bounds the in-memory
 * overlay that serves them meanwhile (about 200 bytes a record).
 */
export const INDEX_BEHIND_RECORDS_MAX = 8192;

/** Buffer used by every scan (recovery, rebuild, compaction): never whole extents in memory. */
export const SCAN_BUFFER_BYTES = 1024 * 1024;

/** Records per LevelDB batch while rebuilding the index. */
export const REBUILD_BATCH_RECORDS = 256;

/** A read that races compaction re-reads the index at most this many times. */
export const GET_RETRIES_MAX = 8;

/** list(): page size bound. */
export const LIST_LIMIT_MAX = 1000;
export const LIST_LIMIT_DEFAULT = 100;

/** Compaction: default garbage ratio above which an extent is rewritten. */
export const COMPACTION_GARBAGE_RATIO_DEFAULT = 0.5;
/**
 * An extent left with no live record is dropped at once (not at the next compaction period) when
 * it holds at least this many bytes, or half its size if that is less: the active one too, which
 * is then sealed and replaced. Frees its disk space and page cache while they are still warm to
 * reuse (docs/storage-node.md, "Dead extents"); the floor keeps a put-delete-put workload from
 * starting a new extent every few records.
 */
export const DEAD_EXTENT_RECLAIM_BYTES_MIN = 64 * 1024 * 1024;
/** Extents rewritten per compact() call at most. */
export const COMPACTION_EXTENTS_MAX = 64;

/** Free file-system bytes never used by extents (default). */
export const RESERVE_BYTES_DEFAULT = 1024 * 1024 * 1024;
/** How often the cached statfs figure is refreshed, at the latest. */
export const STATFS_REFRESH_MS = 1000;

/** Extent numbers are u32 and file names carry them. */
export const EXTENT_NO_MAX = 0xffff_ffff;

/** The persisted high-water mark of an extent moves ahead in steps of this (one synced index write each). */
export const HWM_STEP_BYTES = 64 * 1024 * 1024;

/** Record writes up to this size run on the event loop thread (node-file-layer.ts). */
export const SYNC_WRITE_BYTES_MAX_DEFAULT = 1024 * 1024;
/** An inline write slower than this (ms; a page-cache copy of 1 MiB takes ~0.1-0.3) pauses the inline path. */
export const SYNC_WRITE_SLOW_MS = 2;
/** For this long (ms) after a slow inline write, every write goes through the thread pool. */
export const SYNC_WRITE_PAUSE_MS = 1000;
/**
 * Record reads that ask for it (gets) and are at most this big run on the event loop thread
 * (node-file-layer.ts). 2 MiB: 256 KiB and 1 MiB fragments; 8 MiB reads measured no better
 * inline than through the pool (the pool overlaps their copy with other work).
 */
export const SYNC_READ_BYTES_MAX_DEFAULT = 2 * 1024 * 1024;
/**
 * An inline read slower than SYNC_READ_SLOW_BASE_MS + bytes / SYNC_READ_SLOW_BYTES_PER_MS was not
 * served from the page cache (measured on this project's VM: 256 KiB hot 0.09 / cold 0.44-0.63 ms
 * at p50 / p10-p90; 1 MiB hot 0.28-0.41 / cold 0.95-1.6 ms): it pauses the inline read path.
 */
export const SYNC_READ_SLOW_BASE_MS = 0.15;
export const SYNC_READ_SLOW_BYTES_PER_MS = 2_000_000;
/**
 * An inline read slower than this (ms) pauses the inline path even when the process read nothing
 * from a block device meanwhile: a file system without block I/O (NFS, FUSE) can stall reads too,
 * and no run-queue wait on this kind of machine lasts this long.
 */
export const SYNC_READ_STALL_MS = 20;
/** For this long (ms) after a slow inline read, every read goes through the thread pool. */
export const SYNC_READ_PAUSE_MS = 1000;
/** A put stream (beginPut) with no write or finish for this long is abandoned (default). */
export const PUT_STREAM_IDLE_MS_DEFAULT = 30_000;
/**
 * A put stream not finished this long (ms) after it began is abandoned, however steadily its
 * pieces come (default): puts admitted after a stream are acknowledged only once it ends, so a
 * sender trickling a 64 MiB fragment just inside the idle bound could otherwise hold back every
 * put of the store for half an hour. 60 s lets a fragment of 64 MiB arrive at 1.1 MB/s.
 */
export const PUT_STREAM_LIFETIME_MS_DEFAULT = 60_000;
