/**
 * @tw/raft: the Raft consensus algorithm as a pure state machine (etcd raft's RawNode shape).
 * See types.ts for the data types and the persistence contract (the Ready documentation).
 */
export * from './types.js';
export { RawNode, createRawNode } from './raw-node.js';
export { MemoryStorage, limitSize } from './memory-storage.js';
export { encodeConfChange, decodeConfChange, confChange, confStateEquals } from './conf-change.js';
export { seededRandom } from './random.js';
export { raftErrors } from './errors.js';
export * as raftLimits from './limits.js';
export { describeEntry, describeMessage, describeReady, describeHardState, describeSoftState, describeSnapshot, describeBytes } from './describe.js';
