import { type KvLayout, type Redundancy, formatRedundancy, parseRedundancy } from '@tw/block-format';
import type { BlockRecord, ClusterMapView, NamespaceInfo, NodeRecord } from '@tw/block-map';
import { type PgMap, pgMapToJson } from '@tw/placement';
import type { BlockCommit } from '@tw/block-map';
import { isTwError } from '@tw/errors';
import { type BlockRecordMsg, type ClusterMapMsg, type KvLayoutMsg, type NamespaceMsg, type NodeInfoMsg, type WireRecord, decodeWireCommits } from '@tw/rpc';
import { coordinatorErrors } from './errors.js';

/** Parses a decimal uint64 string from the wire into a safe integer. */
export function u64(field: string, s: string | undefined): number {
  if (s === undefined || s === '') return 0;
  if (!/^\d{1,16}$/.test(s) || Number(s) > Number.MAX_SAFE_INTEGER) {
    throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `${field} must be an unsigned integer below 2^53, got ${JSON.stringify(s.slice(0, 30))}`);
  }
  return Number(s);
}

export function redundancyFrom(field: string, s: string): Redundancy {
  try {
    return parseRedundancy(s);
  } catch (err) {
    throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `${field}: ${(err as Error).message}`, { cause: err });
  }
}

export function layoutToMsg(l: KvLayout | null): KvLayoutMsg | null {
  return l === null ? null : { ...l };
}

export function layoutFromMsg(l: KvLayoutMsg | null | undefined): KvLayout | null {
  if (l === null || l === undefined) return null;
  return { modelId: l.modelId, dtypeCode: l.dtypeCode, memoryFormatCode: l.memoryFormatCode, layers: l.layers, tokens: l.tokens, kvHeads: l.kvHeads, headDim: l.headDim };
}

export function recordToMsg(r: BlockRecord, pg: number): BlockRecordMsg {
  return {
    namespace: r.namespace,
    key: Buffer.from(r.key),
    version: r.writeVersion.toString(),
    mapVersion: String(r.version),
    sizeBytes: String(r.sizeBytes),
    checksum: r.checksum.toString(),
    redundancy: formatRedundancy(r.redundancy),
    fragmentNodes: [...r.fragmentNodes],
    state: r.state === 'committed' ? 'BLOCK_STATE_COMMITTED' : 'BLOCK_STATE_DELETING',
    createdAtMs: String(r.createdAtMs),
    lastAccessMs: String(r.lastAccessMs),
    ttlMs: String(r.ttlMs),
    pinned: r.pinned,
    layout: layoutToMsg(r.layout),
    pg,
  };
}

export function namespaceToMsg(n: NamespaceInfo): NamespaceMsg {
  return {
    name: n.name,
    quotaBytes: String(n.quotaBytes ?? 0),
    defaultTtlMs: String(n.defaultTtlMs),
    redundancy: formatRedundancy(n.redundancy),
    usedBytes: String(n.usageBytes),
    blockCount: String(n.blockCount),
  };
}

export function nodeToMsg(n: NodeRecord, adminUrls: ReadonlyMap<string, string>): NodeInfoMsg {
  return {
    nodeId: n.id,
    dataAddress: n.address,
    adminUrl: adminUrls.get(n.id) ?? '',
    failureDomain: n.domain.split('/'),
    weight: n.weight,
    state: n.state,
    capacityBytes: '0',
    usedBytes: '0',
  };
}

export function clusterMapToMsg(view: ClusterMapView, pgMap: PgMap | null, adminUrls: ReadonlyMap<string, string>): ClusterMapMsg {
  return {
    epoch: String(view.epoch),
    nodes: view.nodes.map((n) => nodeToMsg(n, adminUrls)),
    pgCount: view.rules.pgCount,
    pgMap: pgMap === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(pgMapToJson(pgMap))),
  };
}

/** A record in the packed wire form (LookupPrefix with `packed`). */
export function recordToWire(r: BlockRecord): WireRecord {
  return {
    key: r.key,
    version: r.writeVersion,
    mapVersion: r.version,
    sizeBytes: r.sizeBytes,
    checksum: r.checksum,
    redundancy: formatRedundancy(r.redundancy),
    fragmentNodes: r.fragmentNodes,
    state: r.state,
    createdAtMs: r.createdAtMs,
    lastAccessMs: r.lastAccessMs,
    ttlMs: r.ttlMs,
    pinned: r.pinned,
    layout: r.layout,
  };
}

/** The block map's commits from a packed CommitBlocks request; bad input is TW_COORD_BAD_REQUEST. */
export function commitsFromWire(packed: Uint8Array): BlockCommit[] {
  let wire;
  try {
    wire = decodeWireCommits(packed);
  } catch (err) {
    if (isTwError(err, 'TW_RPC_BAD_PACKED')) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `packedBlocks: ${err.message}`, { cause: err });
    throw err;
  }
  const policies = new Map<string, Redundancy>();
  return wire.map((b, i): BlockCommit => {
    let redundancy: Redundancy | undefined;
    if (b.redundancy) {
      redundancy = policies.get(b.redundancy);
      if (redundancy === undefined) {
        redundancy = redundancyFrom(`blocks[${i}].redundancy`, b.redundancy);
        policies.set(b.redundancy, redundancy);
      }
    }
    return {
      key: b.key,
      sizeBytes: b.sizeBytes,
      checksum: b.checksum,
      fragmentNodes: b.fragmentNodes,
      ...(redundancy === undefined ? {} : { redundancy }),
      layout: layoutFromMsg(b.layout),
      ...(b.ttlMs ? { ttlMs: b.ttlMs } : {}),
      pinned: b.pinned ?? false,
      ...(b.version ? { writeVersion: b.version } : {}),
    };
  });
}
