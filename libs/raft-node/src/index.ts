export { raftNodeErrors } from './errors.js';
export * as raftNodeLimits from './limits.js';
export { encodeMessage, decodeMessage } from './message-codec.js';
export { RaftNode, type RaftNodeOptions, type ReplicatedStateMachine, type RaftLog, type RaftPeerTransport } from './raft-node.js';
export { GrpcRaftTransport, raftPeerService } from './grpc-transport.js';
