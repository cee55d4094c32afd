import { defineErrors } from '@tw/errors';

/** Error codes of @tw/raft. Storage implementations throw the TW_RAFT_LOG_* / SNAPSHOT_* codes. */
export const raftErrors = defineErrors('@tw/raft', {
  TW_RAFT_LOG_COMPACTED: { description: 'The requested log index was compacted into a snapshot; read the snapshot instead.' },
  TW_RAFT_LOG_UNAVAILABLE: { description: 'The requested log index is beyond the last stored entry.' },
  TW_RAFT_SNAPSHOT_OUT_OF_DATE: { description: 'The snapshot is older than the one storage already holds; it was not installed.' },
  TW_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE: { description: 'Storage is building a snapshot; raft retries sending it later.', retryable: true },
  TW_RAFT_PROPOSAL_DROPPED: { description: 'The proposal was dropped (no leader known, leadership transfer in progress, or flow control); retry, possibly on another node.', retryable: true },
  TW_RAFT_STEP_LOCAL_MSG: { description: 'A local-only raft message type was fed to step() as if it came from a peer.' },
  TW_RAFT_BAD_CONFIG: { description: 'The raft configuration is invalid (see the message for the field).' },
  TW_RAFT_BAD_CONF_CHANGE: { description: 'A membership change entry could not be decoded.' },
  TW_RAFT_BAD_ENTRY: { description: 'A log entry or storage operation broke the storage contract (gap in the log, out of range).' },
});
