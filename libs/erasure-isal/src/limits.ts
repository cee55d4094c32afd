/** Bounds of @tw/erasure-isal. */

/**
 * Most bytes of freed coding buffers kept for reuse (process-wide, shared by every codec and
 * worker). Reused memory is already faulted in; above the bound, freed buffers go back to libc.
 */
export const POOL_FREE_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Buffers smaller than this come from Node's allocator (its 8 KiB slab or a malloc below glibc's
 * 128 KiB mmap threshold, both reused without fresh page faults) rather than the pool.
 */
export const POOL_MIN_BYTES = 128 * 1024;
