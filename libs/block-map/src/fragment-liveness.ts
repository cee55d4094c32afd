/**
 * Fragment liveness, for storage-node garbage collection (ARCHITECTURE.md section 3: "fragments
 * never committed are orphans; storage nodes collect them after a grace period").
 *
 * A fragment (namespace, key, writer's version, index) stored on node N is `live` iff the block
 * map holds a record of that exact writer's version, committed or deleting (deleted or
 * superseded, not yet purged), whose fragment list names N for that index. It is `dead` when no
 * such record exists: never committed (orphan), purged, or the record names another node for the
 * index (a stale copy after repair or a write that moved to a fallback node). `unknown` when the
 * map cannot tell (malformed ref, a key with too many superseded versions to scan, a record that
 * does not decode): the storage node keeps it.
 */
export type FragmentLiveness = 'live' | 'dead' | 'unknown';

/** One stored fragment, as its id names it. */
export interface FragmentRef {
  readonly namespace: string;
  readonly key: Uint8Array;
  /** The writer's version (BlockRecord.writeVersion), which fragment ids carry. */
  readonly version: bigint;
  readonly index: number;
}

export interface FragmentCheckResult {
  /** One answer per ref, in order. */
  readonly liveness: readonly FragmentLiveness[];
  /**
   * When the asking node first registered in this cluster (proposer time); 0 when it is not a
   * member of the cluster map, in which case every answer is `unknown`. A storage node compares
   * it with what it saw before: a different value means a different cluster (coordinators
   * rebuilt from scratch, or a node id reused), whose block map says nothing about its data.
   */
  readonly nodeRegisteredAtMs: number;
}
