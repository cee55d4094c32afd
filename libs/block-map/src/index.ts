/**
 * @tw/block-map: the coordinators' replicated state machine (ARCHITECTURE.md sections 3-5):
 * namespaces, block records, the cluster map and the PG map, kept in an ordered KV store.
 *
 * - `KvStore` with `memoryKvStore()` and `levelKvStore(db)` (an opened classic-level).
 * - `openBlockMap(store)` -> `BlockMap`: `apply(index, bytes)` (deterministic, coded error
 *   results, idempotent per (clientId, seq)), queries (`lookupPrefix`, `getBlock`, `listBlocks`,
 *   `listPurgeable`, `namespaces`, `namespaceStats`, `clusterMap`, `pgMap`, `appliedIndex`),
 *   snapshots (`snapshotChunks`, `restoreFromChunks`).
 * - `encodeCommand` / `decodeCommand`: the binary commands that go into the Raft log.
 */
export { blockMapErrors, type BlockMapErrorCode } from './errors.js';
export * from './limits.js';
export { type KvStore, type KvEntry, type KvOp, type KvRange, type KvIterator, kvEntries, prefixEnd, prefixRange } from './kv-store.js';
export { memoryKvStore } from './memory-kv-store.js';
export { type CachingKvStore, type CachingKvStoreOptions, cachingKvStore, isBlockRecordKey } from './caching-kv-store.js';
export { levelKvStore, type LevelLike, type LevelKvStoreOptions } from './level-kv-store.js';
export type { BlockState, NamespaceInfo, BlockRecord, BlockRef, RetiredBlock, NodeRecord, ClusterRules, ClusterMapView } from './types.js';
export {
  type Command,
  type CommandOp,
  type CommandEnvelope,
  type CommandHeader,
  type BlockCommit,
  type NamespaceSettings,
  COMMAND_FORMAT_VERSION,
  COMMAND_HEADER_BYTES,
  encodeCommand,
  decodeCommand,
} from './commands.js';
export { type CommandResult, type CommandError, type PurgedBlock, encodeResult, decodeResult } from './results.js';
export { type SnapshotStream, type SnapshotChunk, snapshotChunkIndex } from './snapshot-chunks.js';
export {
  type ApplyOutcome,
  type LookupResult,
  type StoredLookup,
  type NamespaceStats,
  type PurgeCandidate,
  type OpenBlockMapOptions,
  BlockMap,
  openBlockMap,
} from './block-map.js';
export type { FragmentLiveness, FragmentRef, FragmentCheckResult } from './fragment-liveness.js';
export { STORED_BLOCK } from './records.js';
