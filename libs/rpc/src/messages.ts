/**
 * The control-plane messages as TypeScript sees them (proto-loader with camelCase fields,
 * 64-bit integers as decimal strings, enums as names, bytes as Buffers). Helpers convert the
 * 64-bit strings to and from bigint / number where the callers want numbers.
 */
export interface KvLayoutMsg {
  modelId: string;
  dtypeCode: number;
  memoryFormatCode: number;
  layers: number;
  tokens: number;
  kvHeads: number;
  headDim: number;
}

export type BlockStateName = 'BLOCK_STATE_UNSPECIFIED' | 'BLOCK_STATE_COMMITTED' | 'BLOCK_STATE_DELETING';

export interface BlockRecordMsg {
  namespace: string;
  key: Buffer;
  version: string;
  sizeBytes: string;
  checksum: string;
  redundancy: string;
  fragmentNodes: string[];
  state: BlockStateName;
  createdAtMs: string;
  lastAccessMs: string;
  ttlMs: string;
  pinned: boolean;
  layout: KvLayoutMsg | null;
  pg: number;
  mapVersion: string;
}

export interface RequestIdMsg {
  clientId: string;
  seq: string;
}

export interface LookupPrefixRequestMsg {
  namespace: string;
  keys: Buffer[];
  token: string;
  includeRecords: boolean;
  /** With includeRecords: the records come packed in `packedRecords` (decodeWireRecords). */
  packed?: boolean;
  /** Instead of `keys` (leave it empty): the keys packed by encodeWireKeys. */
  packedKeys?: Buffer;
}
export interface LookupPrefixResponseMsg {
  hits: number;
  records: BlockRecordMsg[];
  appliedIndex: string;
  packedRecords?: Buffer;
  /**
   * Keys the coordinator read from the request. A coordinator that predates `packedKeys` ignores
   * them and answers 0 here: a client that packed its keys then resends them as `keys`.
   */
  keysRead?: number;
}

export interface BlockCommitMsg {
  key: Buffer;
  sizeBytes: string;
  checksum: string;
  redundancy: string;
  fragmentNodes: string[];
  layout: KvLayoutMsg | null;
  ttlMs: string;
  pinned: boolean;
  version: string;
}
export interface CommitBlocksRequestMsg {
  namespace: string;
  blocks: BlockCommitMsg[];
  requestId: RequestIdMsg | null;
  token: string;
  /** Instead of `blocks` (leave it empty): the blocks packed by encodeWireCommits. */
  packedBlocks?: Buffer;
}
export interface CommitResultMsg {
  version: string;
  errorCode: string;
  errorMessage: string;
  superseded: BlockRecordMsg[];
}
export interface CommitBlocksResponseMsg {
  results: CommitResultMsg[];
  index: string;
  /** For a packed request, instead of `results`: one u64 version per block (decodeWireVersions). */
  packedVersions?: Buffer;
}

export interface DeleteBlocksRequestMsg {
  namespace: string;
  keys: Buffer[];
  requestId: RequestIdMsg | null;
  token: string;
}
export interface DeleteBlocksResponseMsg {
  deleted: number;
  index: string;
}

export interface NodeInfoMsg {
  nodeId: string;
  dataAddress: string;
  adminUrl: string;
  failureDomain: string[];
  weight: number;
  state: string;
  capacityBytes: string;
  usedBytes: string;
}
export interface RegisterNodeRequestMsg {
  node: NodeInfoMsg | null;
  requestId: RequestIdMsg | null;
}
export interface RegisterNodeResponseMsg {
  epoch: string;
}
export interface HeartbeatRequestMsg {
  nodeId: string;
  capacityBytes: string;
  usedBytes: string;
  fragmentCount: string;
}
export interface HeartbeatResponseMsg {
  epoch: string;
}
export interface ClusterMapMsg {
  epoch: string;
  nodes: NodeInfoMsg[];
  pgCount: number;
  pgMap: Buffer;
}
export interface WatchClusterMapRequestMsg {
  knownEpoch: string;
}
export interface NamespaceMsg {
  name: string;
  quotaBytes: string;
  defaultTtlMs: string;
  redundancy: string;
  usedBytes: string;
  blockCount: string;
}
export interface CreateNamespaceRequestMsg {
  namespace: NamespaceMsg | null;
  token: string;
  requestId: RequestIdMsg | null;
  adminToken: string;
}
export interface GetNamespaceRequestMsg {
  name: string;
  adminToken: string;
}
export interface ListNamespacesRequestMsg {
  adminToken: string;
}
export interface ListNamespacesResponseMsg {
  namespaces: NamespaceMsg[];
}
export interface DeleteNamespaceRequestMsg {
  name: string;
  requestId: RequestIdMsg | null;
  adminToken: string;
}
export type EmptyMsg = Record<string, never>;

export interface BadFragmentReportMsg {
  namespace: string;
  key: Buffer;
  version: string;
  index: number;
  nodeId: string;
  reason: string;
  detail: string;
  seenAtMs: string;
  count: number;
}
export interface ReportBadFragmentsRequestMsg {
  gatewayId: string;
  reports: BadFragmentReportMsg[];
  dropped: string;
}
export interface ReportBadFragmentsResponseMsg {
  accepted: number;
}
export interface FragmentRefMsg {
  namespace: string;
  key: Buffer;
  version: string;
  index: number;
}
export type FragmentLivenessName = 'FRAGMENT_LIVENESS_UNKNOWN' | 'FRAGMENT_LIVENESS_LIVE' | 'FRAGMENT_LIVENESS_DEAD';
export interface CheckFragmentsRequestMsg {
  nodeId: string;
  fragments: FragmentRefMsg[];
}
export interface CheckFragmentsResponseMsg {
  liveness: FragmentLivenessName[];
  appliedIndex: string;
  nodeRegisteredAtMs: string;
}

export interface VerifyNamespaceTokenRequestMsg {
  namespace: string;
  token: string;
}
export interface VerifyNamespaceTokenResponseMsg {
  known: boolean;
  hasToken: boolean;
  valid: boolean;
}

export interface MessageBatchMsg {
  from: string;
  messages: Buffer[];
}
export interface SnapshotChunkMsg {
  from: string;
  metadata: Buffer;
  data: Buffer;
  last: boolean;
}
export type AckMsg = Record<string, never>;

/** The unary calls of the Coordinator service, request -> response. */
export interface CoordinatorUnary {
  lookupPrefix: [LookupPrefixRequestMsg, LookupPrefixResponseMsg];
  commitBlocks: [CommitBlocksRequestMsg, CommitBlocksResponseMsg];
  deleteBlocks: [DeleteBlocksRequestMsg, DeleteBlocksResponseMsg];
  registerNode: [RegisterNodeRequestMsg, RegisterNodeResponseMsg];
  heartbeat: [HeartbeatRequestMsg, HeartbeatResponseMsg];
  createNamespace: [CreateNamespaceRequestMsg, NamespaceMsg];
  getNamespace: [GetNamespaceRequestMsg, NamespaceMsg];
  listNamespaces: [ListNamespacesRequestMsg, ListNamespacesResponseMsg];
  deleteNamespace: [DeleteNamespaceRequestMsg, EmptyMsg];
  reportBadFragments: [ReportBadFragmentsRequestMsg, ReportBadFragmentsResponseMsg];
  checkFragments: [CheckFragmentsRequestMsg, CheckFragmentsResponseMsg];
  verifyNamespaceToken: [VerifyNamespaceTokenRequestMsg, VerifyNamespaceTokenResponseMsg];
}
export type CoordinatorMethod = keyof CoordinatorUnary;
