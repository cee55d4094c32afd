export { runSimulation, DEFAULT_FAULTS, type FaultProfile, type SimOptions, type SimResult, type SimStats } from './simulator.js';
export { SafetyChecker, SafetyViolation, type LogView } from './checkers.js';
export { SimNode, type ClientReply, type ClientRequest, type NodeHost, type NodeSettings } from './node.js';
export { SimDisk, applyWrite, cloneStorage, type DiskWrite } from './durable-disk.js';
export { Prng } from './prng.js';
export { EventQueue } from './event-queue.js';
export { requestKey, type ApplyResult, type SimService, type SimStateMachine } from './service.js';
export { kvService, KvStateMachine, type KvWorkloadOptions } from './kv-service.js';
