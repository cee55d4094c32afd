import { defineErrors } from '@tw/errors';

/**
 * Codes of the block map. Most are *results*: `apply` never throws for bad client input, it
 * returns `{ ok: false, code, message }`, the same on every replica. The rest (queries, snapshot
 * restore, opening a store) are thrown as TwErrors.
 */
export const blockMapErrors = defineErrors('@tw/block-map', {
  TW_BLOCKMAP_BAD_COMMAND: { description: 'A command is malformed (unknown format version or operation, truncated, trailing bytes, out-of-range field); nothing was applied.' },
  TW_BLOCKMAP_BAD_KEY: { description: 'A block key is empty or longer than 512 bytes; nothing in the batch was applied.' },
  TW_BLOCKMAP_BAD_NAMESPACE: { description: 'A namespace name is not 1-63 characters of a-z, 0-9, "-" or "_", or a namespace setting (quota, TTL, token hash) is out of range.' },
  TW_BLOCKMAP_UNKNOWN_NAMESPACE: { description: 'The namespace does not exist: create it first.' },
  TW_BLOCKMAP_NAMESPACE_EXISTS: { description: 'A namespace of that name already exists.' },
  TW_BLOCKMAP_NAMESPACE_NOT_EMPTY: { description: 'A namespace still holds blocks (committed or awaiting purge): delete and purge them before deleting the namespace.' },
  TW_BLOCKMAP_TOO_MANY_NAMESPACES: { description: 'The cluster holds the most namespaces it allows (NAMESPACES_MAX).' },
  TW_BLOCKMAP_BAD_REDUNDANCY: { description: 'A redundancy policy is not ec:k+m (k 1..16, m 1..4), replicate:n (n 1..8) or none.' },
  TW_BLOCKMAP_BAD_RECORD: { description: 'A block record is invalid (size, layout, TTL, or fragment node count that does not match its redundancy); the details name the field and the batch position.' },
  TW_BLOCKMAP_UNKNOWN_NODE: { description: 'A block record names a fragment node that is not in the cluster map, or a node command names an unknown node.' },
  TW_BLOCKMAP_BAD_NODE: { description: 'A node registration or state change would make the cluster map invalid (id, address, domain path, weight); the details carry the placement code.' },
  TW_BLOCKMAP_NODE_REMOVED: { description: 'The node id belongs to a node in state out: ids are never reused, register under a new id.' },
  TW_BLOCKMAP_QUOTA_EXCEEDED: { description: 'Committing the batch would take the namespace past its quota; nothing in the batch was applied. Delete blocks or raise the quota.' },
  TW_BLOCKMAP_BATCH_TOO_LARGE: { description: 'A command carries more keys or records than the block map accepts in one batch (BATCH_RECORDS_MAX).' },
  TW_BLOCKMAP_REQUEST_EXPIRED: { description: 'A retried request is older than the de-duplication window of its client: its outcome is no longer known. Treat it as indeterminate.' },
  TW_BLOCKMAP_CLUSTER_NOT_INITIALIZED: { description: 'The cluster has not been initialised (InitCluster: PG count, domain levels, placement rules).' },
  TW_BLOCKMAP_CLUSTER_INITIALIZED: { description: 'InitCluster was already applied: the PG count and placement rules are fixed at cluster creation.' },
  TW_BLOCKMAP_BAD_CLUSTER_RULES: { description: 'InitCluster carries invalid placement rules or domain levels; the details carry the placement code.' },
  TW_BLOCKMAP_INDEX_REPLAYED: { description: 'apply() was called with a log index at or below the applied index (a replay after restart); nothing was applied.' },
  TW_BLOCKMAP_BAD_QUERY: { description: 'A read query has invalid arguments (too many keys, bad namespace, bad limit).' },
  TW_BLOCKMAP_BAD_SNAPSHOT: { description: 'Snapshot chunks are malformed, out of order or incomplete; the restore stopped and must be repeated.' },
  TW_BLOCKMAP_RESTORE_INCOMPLETE: { description: 'The store holds a partially restored snapshot (a crash interrupted restoreFromChunks): install the snapshot again before serving.' },
  TW_BLOCKMAP_CORRUPT_STATE: { description: 'A value in the block map store does not decode: the store is corrupt; rebuild this replica from a snapshot.' },
});

export type BlockMapErrorCode = keyof typeof blockMapErrors.specs;
