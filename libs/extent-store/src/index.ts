/**
 * @tw/extent-store: a storage node's local fragment store. Append-only, preallocated extent
 * files of self-describing records, indexed by LevelDB (classic-level); group-committed puts,
 * crash recovery by checksum, index rebuild from the extents, compaction, capacity accounting.
 * All file access goes through a FileLayer (node:fs, or a fault-injecting one for tests).
 */
export {
  ExtentStore,
  openExtentStore,
  type CapacityReport,
  type CompactOptions,
  type CompactResult,
  type CorruptionReport,
  type ExtentStoreOptions,
  type FragmentStat,
  type FsyncPolicy,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ListPage,
  type PutOptions,
  type DeleteOptions,
  type PutStream,
} from './extent-store.js';
export { extentErrors, type ExtentErrorCode } from './errors.js';
export type { FileHandle, FileLayer, OpenMode, ReadOptions } from './file-layer.js';
export { nodeFileLayer, type NodeFileLayer, type NodeFileLayerOptions, type ReadPathStats, type WritePathStats } from './node-file-layer.js';
export { FaultyFileLayer, mulberry32, type FaultPlan } from './faulty-file-layer.js';
export { extentFileName } from './extent.js';
export { recordBytesFor } from './record.js';
export * as extentLimits from './limits.js';
