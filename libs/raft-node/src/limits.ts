/** Proposals waiting for their entry to be applied, per node. */
export const PENDING_PROPOSALS_MAX = 100_000;
/** Linearizable reads waiting for a ReadIndex confirmation, per node. */
export const PENDING_READS_MAX = 100_000;
/** Messages buffered for one peer before the oldest are dropped (raft tolerates loss). */
export const PEER_QUEUE_MESSAGES_MAX = 4096;
/** Messages sent to one peer in one RPC. */
export const PEER_BATCH_MESSAGES_MAX = 256;
/** Snapshot chunk size on the wire. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Largest encoded raft message accepted from a peer. */
export const MESSAGE_BYTES_MAX = 64 * 1024 * 1024;
/** A batch of raft messages not taken by the connection (or answered, unary) within this is a failed send. */
export const STEP_TIMEOUT_MS = 2000;
