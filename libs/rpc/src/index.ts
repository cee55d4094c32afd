export { rpcErrors } from './errors.js';
export * from './messages.js';
export * from './packed-records.js';
export { toServiceError, fromServiceError, leaderHint } from './status.js';
export { type CallContext, type UnaryImpl, type CoordinatorImpl, type RaftPeerImpl, type RunningGrpcServer, addCoordinatorService, addRaftPeerService, startGrpcServer } from './server.js';
export { type CoordinatorClientOptions, CoordinatorClient, RaftPeerClient, RaftStepStream } from './client.js';
