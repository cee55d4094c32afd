export type { Model, Operation } from './model.js';
export { Bitset } from './bitset.js';
export { checkLinearizable, describeFailure, type CheckOptions, type CheckReport, type CheckResult, type PartitionReport } from './checker.js';
export { kvModel, type KvInput, type KvOutput, type KvKeyState } from './kv-model.js';
export { HistoryRecorder } from './history.js';
