import { defineErrors } from '@tw/errors';

export const raftNodeErrors = defineErrors('@tw/raft-node', {
  TW_RAFT_NODE_NOT_LEADER: { description: 'This coordinator is not the Raft leader; `details.leader` is the leader\'s id when known.', retryable: true },
  TW_RAFT_NODE_TIMEOUT: { description: 'A proposal or a linearizable read did not complete in time (no quorum reachable, leader changed); it may or may not have taken effect. Retry with the same request id.', retryable: true },
  TW_RAFT_NODE_STOPPED: { description: 'The Raft node is stopping or stopped; calls in flight were cancelled.', retryable: true },
  TW_RAFT_NODE_BAD_MESSAGE: { description: 'A Raft message from a peer could not be decoded; it was dropped.' },
  TW_RAFT_NODE_STATE_BEHIND_LOG: { description: 'On start, the state machine is older than the compacted Raft log (its data was lost); the node cannot recover alone. Remove its raft folder so that it rejoins and receives a snapshot.' },
  TW_RAFT_NODE_OVERLOADED: { description: 'Too many proposals or reads are waiting on this node; back off and retry.', retryable: true },
});
