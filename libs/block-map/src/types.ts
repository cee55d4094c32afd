import type { KvLayout, Redundancy } from '@tw/block-format';
import type { NodeState } from '@tw/placement';

export type BlockState = 'committed' | 'deleting';

/** A namespace as the block map holds it. */
export interface NamespaceInfo {
  readonly name: string;
  /** Most bytes of committed blocks the namespace may hold; null: no quota. */
  readonly quotaBytes: number | null;
  /** TTL given to blocks committed without one; 0: blocks do not expire. */
  readonly defaultTtlMs: number;
  readonly redundancy: Redundancy;
  /** Hash of the namespace's access token (the token itself is never stored); may be empty. */
  readonly tokenHash: Uint8Array;
  /** Bytes (payload sizes) of committed blocks. */
  readonly usageBytes: number;
  /** Committed blocks. */
  readonly blockCount: number;
  /** Bytes of blocks deleted or superseded but not yet purged (still on the storage nodes). */
  readonly garbageBytes: number;
  /** Blocks deleted or superseded but not yet purged. */
  readonly garbageCount: number;
  readonly createdAtMs: number;
}

/** A block record (ARCHITECTURE.md section 3). */
export interface BlockRecord {
  readonly namespace: string;
  readonly key: Uint8Array;
  /** Cluster-wide unique, increasing: a later commit of any key has a larger version. */
  readonly version: number;
  /**
   * The version the writer stored the fragments under (fragment ids and headers carry it): the
   * writer chooses it before the commit, so it cannot be `version`. 64-bit.
   */
  readonly writeVersion: bigint;
  readonly sizeBytes: number;
  readonly checksum: bigint;
  readonly layout: KvLayout | null;
  readonly redundancy: Redundancy;
  /** Node id holding fragment i (slot order), fragmentCount(redundancy) of them. */
  readonly fragmentNodes: readonly string[];
  readonly state: BlockState;
  /** Proposer time of the commit. */
  readonly createdAtMs: number;
  /** Coarse (TOUCH_GRANULARITY_MS) time of the last read the gateways reported. */
  readonly lastAccessMs: number;
  /** Expires ttlMs after max(createdAtMs, lastAccessMs); 0: never. */
  readonly ttlMs: number;
  /** Pinned blocks are never expired or evicted. */
  readonly pinned: boolean;
  /** When the record became `deleting` (deleted or superseded); 0 while committed. */
  readonly deletingSinceMs: number;
}

/** Names one version of a block (for purges). */
export interface BlockRef {
  readonly namespace: string;
  readonly key: Uint8Array;
  readonly version: number;
}

/** A version that left the map, with where its fragments are (so they can be deleted). */
export interface RetiredBlock {
  readonly key: Uint8Array;
  readonly version: number;
  readonly writeVersion: bigint;
  readonly sizeBytes: number;
  readonly fragmentNodes: readonly string[];
}

/** A storage node in the cluster map. */
export interface NodeRecord {
  readonly id: string;
  readonly address: string;
  /** Failure-domain path, one segment per domain level: `zone-a/rack-7/host-3`. */
  readonly domain: string;
  readonly weight: number;
  readonly state: NodeState;
  /** Proposer time of the last registration or heartbeat the coordinators recorded. */
  readonly lastHeartbeatMs: number;
  /** Cluster epoch at which the node last registered or was recorded alive. */
  readonly lastHeartbeatEpoch: number;
  readonly registeredAtMs: number;
}

/** Placement rules fixed at cluster creation. */
export interface ClusterRules {
  readonly pgCount: number;
  readonly domainLevels: readonly string[];
  /** Width of the PG map's stripes (the cluster's default redundancy). */
  readonly redundancy: Redundancy;
  /** Domain level the fragment cap applies at (one of domainLevels). */
  readonly failureDomain: string;
  /** Most fragments of a stripe in one failure domain; 0: the placement default (losses tolerated). */
  readonly domainCapMax: number;
}

export interface ClusterMapView {
  readonly epoch: number;
  readonly rules: ClusterRules;
  /** Sorted by id. */
  readonly nodes: readonly NodeRecord[];
}
