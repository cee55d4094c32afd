/** Bounds of the gateway data path. Options may lower the defaults, never raise past the caps. */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** DRAM tier size by default: accepted (and cached) block bytes held in memory. */
export const DRAM_TIER_BYTES_DEFAULT = 1 * GiB;
/** Largest DRAM tier this build accepts. */
export const DRAM_TIER_BYTES_CAP = 512 * GiB;
/** Largest single block a put accepts (also bounded by the DRAM tier). */
export const BLOCK_BYTES_MAX = 1 * GiB;
/** Fragment and parity bytes in flight (reads and writes together) by default. */
export const INFLIGHT_BYTES_MAX_DEFAULT = 512 * MiB;
/** Blocks being encoded, written and committed at once (background flushes). */
export const FLUSH_INFLIGHT_MAX_DEFAULT = 16;
/** Most keys in one coordinator lookupPrefix call (the coordinators' limit). */
export const LOOKUP_BATCH_KEYS_MAX = 4096;
/** Most keys one lookupPrefix / mget call of the gateway takes. */
export const LOOKUP_KEYS_MAX = 65_536;
/** Most block records in one coordinator commitBlocks call. */
export const COMMIT_BATCH_MAX_DEFAULT = 256;
export const COMMIT_BATCH_CAP = 4096;
/** How long the first commit of a batch waits for company, in ms. */
export const COMMIT_WINDOW_MS_DEFAULT = 2;
/** Commit calls to the coordinators in flight at once. */
export const COMMIT_INFLIGHT_MAX = 4;
/** Records in the lookup cache, and how long a cached record is trusted (its lease). */
export const RECORD_CACHE_ENTRIES_DEFAULT = 65_536;
export const RECORD_LEASE_MS_DEFAULT = 2_000;
/** How long a committed DRAM-tier entry is served without re-checking its version. */
export const DRAM_LEASE_MS_DEFAULT = 2_000;
/** Hedging: when k data fragments have not all arrived after this, parity reads start. */
export const HEDGE_MS_DEFAULT = 50;
/** Deadline of one fragment read or write; past it the fragment counts as lost. */
export const FRAGMENT_TIMEOUT_MS_DEFAULT = 10_000;
/** Nodes tried for one fragment slot on write (the PG map's node, then next candidates). */
export const WRITE_SLOT_ATTEMPTS_MAX = 3;
/** Subsets of fragments tried when the assembled block fails its checksum. */
export const RECONSTRUCT_COMBINATIONS_MAX = 64;
/** Prefetches running at once (lookupPrefix with prefetch). */
export const PREFETCH_INFLIGHT_MAX = 8;
/** Free fragment buffers kept for reuse, in bytes. */
export const BUFFER_POOL_BYTES_MAX_DEFAULT = 256 * MiB;
/** Buffers handed out by the pool are rounded up to this many bytes, so sizes repeat. */
export const BUFFER_POOL_GRANULE_BYTES = 64 * KiB;
/** Storage-node peers kept open. */
export const PEERS_MAX = 4096;
/** Waiters for DRAM-tier or in-flight bytes; beyond it calls are refused. */
export const BYTE_WAITERS_MAX = 65_536;
/** Blocks one mget reads at once. */
export const MGET_CONCURRENCY = 16;
/** Bad-fragment reports: distinct fragments queued, reports per call, and the least time between calls (ms). */
export const BAD_FRAGMENT_QUEUE_MAX_DEFAULT = 4096;
export const BAD_FRAGMENT_BATCH_MAX = 1024;
export const BAD_FRAGMENT_REPORT_INTERVAL_MS_DEFAULT = 1000;
/** Read repairs (rebuilt fragments being rewritten after a degraded read) in flight at once. */
export const READ_REPAIR_INFLIGHT_MAX = 4;
