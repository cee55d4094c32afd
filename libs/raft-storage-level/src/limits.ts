/** Bounds of the LevelDB raft log (house style: every bound in one place). */

/** Largest snapshot image accepted, in bytes (the coordinator's state machine image). */
export const SNAPSHOT_MAX_BYTES = 1 << 30;

/** Largest single entry payload accepted, in bytes. */
export const ENTRY_DATA_MAX_BYTES = 64 << 20;

/** Persists queued behind the one being written; more means the caller is not awaiting them. */
export const PERSIST_QUEUE_MAX = 64;
