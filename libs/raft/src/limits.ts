/** Bounds of @tw/raft (house style: every bound in one place). Sizes in bytes. */

/** Default max bytes of entries in one MsgApp (always at least one entry). */
export const MAX_SIZE_PER_MSG_BYTES = 1 << 20;
/** Default max bytes of committed entries handed out in one Ready (always at least one). */
export const MAX_COMMITTED_SIZE_PER_READY_BYTES = 8 << 20;
/** Default max bytes of uncommitted entries a leader holds before it drops new proposals. */
export const MAX_UNCOMMITTED_ENTRIES_BYTES = 64 << 20;
/** Default max MsgApp in flight (sent, not acknowledged) per follower in replicate state. */
export const INFLIGHT_MSGS_MAX = 256;
/** Default max bytes of entries in flight per follower. */
export const INFLIGHT_BYTES_MAX = 32 << 20;
/** Max ReadIndex requests a leader queues (pending quorum confirmation or its first commit); more are dropped. */
export const READ_INDEX_PENDING_MAX = 4096;
/** Max entries accepted in one proposal batch. */
export const PROPOSAL_BATCH_ENTRIES_MAX = 4096;
/** Max messages a node buffers between two Ready calls; beyond it new messages are dropped (as if lost). */
export const OUTBOX_MESSAGES_MAX = 65_536;
