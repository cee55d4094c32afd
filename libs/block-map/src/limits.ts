/** Bounds of the block map. Changing a bound that shapes stored bytes is a format change. */

/** Largest command the state machine accepts, in bytes (a CommitBlocks of 4,096 records is ~1 MiB). */
export const COMMAND_MAX_BYTES = 16 * 1024 * 1024;
/** Most records / keys / refs in one CommitBlocks, DeleteBlocks, TouchBlocks or PurgeBlocks. */
export const BATCH_RECORDS_MAX = 4096;
/** Most keys in one lookupPrefix (ARCHITECTURE.md section 4). */
export const LOOKUP_KEYS_MAX = 4096;
/** Most namespaces in a cluster (all of them are cached in memory). */
export const NAMESPACES_MAX = 10_000;
/** Longest access-token hash stored with a namespace, in bytes (e.g. SHA-256 = 32). */
export const TOKEN_HASH_MAX_BYTES = 64;
/** Results remembered per client for de-duplicating retries (a client's pipelining window). */
export const DEDUP_RESULTS_PER_CLIENT_MAX = 128;
/** Client sessions remembered; beyond it the least recently seen client is forgotten. */
export const CLIENT_SESSIONS_MAX = 65_536;
/** Largest page of listBlocks / listPurgeable. */
export const LIST_LIMIT_MAX = 10_000;
/** lastAccess is coarse: a touch writes only when the stored value is older than this. */
export const TOUCH_GRANULARITY_MS = 60_000;
/** Longest TTL a block or namespace may carry: 10 years. */
export const TTL_MAX_MS = 10 * 365 * 24 * 3600 * 1000;
/** Snapshot chunk size bounds, in bytes. */
export const SNAPSHOT_CHUNK_MIN_BYTES = 4096;
export const SNAPSHOT_CHUNK_MAX_BYTES = 64 * 1024 * 1024;
/** Largest single block payload accepted in a record: 2^40 bytes (@tw/block-format's PAYLOAD_MAX_BYTES). */
export const BLOCK_SIZE_MAX_BYTES = 2 ** 40;
/** Largest namespace quota: 2^52 bytes (4 PiB), exact in a JS number. */
export const QUOTA_MAX_BYTES = 2 ** 52;
/** Largest address string of a node, in UTF-8 bytes (placement allows 256 characters). */
export const NODE_ADDRESS_MAX_BYTES = 1024;
/** Most fragments in one liveness check (storage-node garbage collection). */
export const FRAGMENT_CHECK_MAX = 1024;
/** Superseded versions of one key scanned by a liveness check before it answers `unknown`. */
export const FRAGMENT_CHECK_GARBAGE_SCAN_MAX = 256;
/** Block records (present or absent) a caching store keeps in memory by default (~300 bytes each). */
export const CACHE_ENTRIES_DEFAULT = 262_144;
/**
 * Keys a caching store remembers as absent (read from the inner store and not found), apart from
 * the record cache; the set is emptied whenever it passes this size.
 */
export const ABSENT_KEYS_MAX = 65_536;
/** Ops a write-behind store stages before `write` waits for the inner store. */
export const WRITE_BEHIND_OPS_MAX = 200_000;
/** Keys written while cache-filling reads are out, remembered to keep stale values out of the cache. */
export const WRITTEN_DURING_READS_MAX = 65_536;
/** Largest lookup answer whose stored bytes go to a reused buffer (lookupPrefixStoredWith); larger ones get their own. */
export const LOOKUP_SCRATCH_MAX_BYTES = 4 * 1024 * 1024;
