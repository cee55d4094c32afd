/** Binary codecs of the values the block map stores (format byte first). */
import type { KvLayout, Redundancy } from '@tw/block-format';
import { NODE_STATES, type NodeState, type PgMap, type PgMapNode, normalizeRules } from '@tw/placement';
import { DecodeError, Reader, Writer } from './bytes.js';
import type { BlockRecord, ClusterRules, NamespaceInfo, NodeRecord } from './types.js';

const FORMAT = 1;

function checkFormat(r: Reader, what: string): void {
  const f = r.u8();
  if (f !== FORMAT) throw new DecodeError(`${what}: unknown format ${f}`);
}

export function writeRedundancy(w: Writer, r: Redundancy): void {
  if (r.kind === 'ec') w.u8(1).u8(r.k).u8(r.m);
  else if (r.kind === 'replicate') w.u8(2).u8(r.n).u8(0);
  else w.u8(0).u8(0).u8(0);
}

export function readRedundancy(r: Reader): Redundancy {
  const kind = r.u8();
  const a = r.u8();
  const b = r.u8();
  if (kind === 1) return { kind: 'ec', k: a, m: b };
  if (kind === 2 && b === 0) return { kind: 'replicate', n: a };
  if (kind === 0 && a === 0 && b === 0) return { kind: 'none' };
  throw new DecodeError(`redundancy kind ${kind}`);
}

export function writeLayout(w: Writer, l: KvLayout | null): void {
  if (l === null) {
    w.u8(0);
    return;
  }
  w.u8(1).str16(l.modelId).u8(l.dtypeCode).u8(l.memoryFormatCode).u32(l.layers).u32(l.tokens).u32(l.kvHeads).u32(l.headDim);
}

export function readLayout(r: Reader): KvLayout | null {
  const present = r.u8();
  if (present === 0) return null;
  if (present !== 1) throw new DecodeError(`layout flag ${present}`);
  return { modelId: r.str16(), dtypeCode: r.u8(), memoryFormatCode: r.u8(), layers: r.u32(), tokens: r.u32(), kvHeads: r.u32(), headDim: r.u32() };
}

export function encodeNamespace(ns: NamespaceInfo): Uint8Array {
  const w = new Writer(128).u8(FORMAT).str8(ns.name).bool(ns.quotaBytes !== null).u64(ns.quotaBytes ?? 0).u64(ns.defaultTtlMs);
  writeRedundancy(w, ns.redundancy);
  return w.bytes8(ns.tokenHash).u64(ns.usageBytes).u64(ns.blockCount).u64(ns.garbageBytes).u64(ns.garbageCount).u64(ns.createdAtMs).finish();
}

export function decodeNamespace(bytes: Uint8Array): NamespaceInfo {
  const r = new Reader(bytes);
  checkFormat(r, 'namespace');
  const name = r.str8();
  const hasQuota = r.bool();
  const quota = r.u64();
  const ns: NamespaceInfo = {
    name,
    quotaBytes: hasQuota ? quota : null,
    defaultTtlMs: r.u64(),
    redundancy: readRedundancy(r),
    tokenHash: r.bytes8().slice(),
    usageBytes: r.u64(),
    blockCount: r.u64(),
    garbageBytes: r.u64(),
    garbageCount: r.u64(),
    createdAtMs: r.u64(),
  };
  r.end();
  return ns;
}

/** Block record value; fragment nodes are stored as node indexes (the cluster map's numbering). */
export function encodeBlock(b: BlockRecord, nodeIndexes: readonly number[]): Uint8Array {
  const w = new Writer(96 + (b.layout === null ? 0 : b.layout.modelId.length * 3)).u8(FORMAT).u64(b.version).big64(b.writeVersion).u64(b.sizeBytes).big64(b.checksum);
  writeRedundancy(w, b.redundancy);
  w.u8(nodeIndexes.length);
  for (const i of nodeIndexes) w.u32(i);
  w.u8(b.state === 'committed' ? 0 : 1).u64(b.createdAtMs).u64(b.lastAccessMs).u64(b.ttlMs).bool(b.pinned).u64(b.deletingSinceMs);
  writeLayout(w, b.layout);
  return w.finish();
}

export function decodeBlock(namespace: string, key: Uint8Array, bytes: Uint8Array, idOf: (index: number) => string): BlockRecord {
  const r = new Reader(bytes);
  checkFormat(r, 'block');
  const version = r.u64();
  const writeVersion = r.big64();
  const sizeBytes = r.u64();
  const checksum = r.big64();
  const redundancy = readRedundancy(r);
  const n = r.u8();
  const fragmentNodes: string[] = [];
  for (let i = 0; i < n; i++) fragmentNodes.push(idOf(r.u32()));
  const stateByte = r.u8();
  if (stateByte > 1) throw new DecodeError(`block state ${stateByte}`);
  const rec: BlockRecord = {
    namespace,
    key,
    version,
    writeVersion,
    sizeBytes,
    checksum,
    redundancy,
    fragmentNodes,
    state: stateByte === 0 ? 'committed' : 'deleting',
    createdAtMs: r.u64(),
    lastAccessMs: r.u64(),
    ttlMs: r.u64(),
    pinned: r.bool(),
    deletingSinceMs: r.u64(),
    layout: null,
  };
  const layout = readLayout(r);
  r.end();
  return layout === null ? rec : { ...rec, layout };
}

/**
 * Offsets in a stored block record (encodeBlock's layout, format 1), for readers that copy fields
 * out of the stored bytes instead of decoding them (LookupPrefix answers). All integers are
 * little-endian; u64s hold safe integers except the two that are bigints (writeVersion, checksum).
 *
 *   0 format | 1 u64 version (map) | 9 u64 writeVersion | 17 u64 sizeBytes | 25 u64 checksum |
 *   33 redundancy (kind, a, b) | 36 u8 n | 37 n x u32 node index | tail: +0 u8 state |
 *   +1 u64 createdAtMs | +9 u64 lastAccessMs | +17 u64 ttlMs | +25 u8 pinned |
 *   +26 u64 deletingSinceMs | +34 u8 layout flag | +35 [u16 len | modelId UTF-8 | u8 dtypeCode |
 *   u8 memoryFormatCode | u32 layers | u32 tokens | u32 kvHeads | u32 headDim]
 */
export const STORED_BLOCK = {
  versionAt: 1,
  writeVersionAt: 9,
  sizeBytesAt: 17,
  checksumAt: 25,
  redundancyAt: 33,
  nodeCountAt: 36,
  nodesAt: 37,
  /** Relative to the tail (storedBlockTail). */
  stateAt: 0,
  createdAtMsAt: 1,
  lastAccessMsAt: 9,
  ttlMsAt: 17,
  pinnedAt: 25,
  layoutFlagAt: 34,
  layoutAt: 35,
  /** Bytes of the tail without a layout. */
  tailBytes: 35,
} as const;

const u32At = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x100_0000;
const u64At = (b: Uint8Array, at: number): number => u32At(b, at) + u32At(b, at + 4) * 0x1_0000_0000;

/** Where the tail of a stored block starts (after its node list); checks the format and the length. Throws DecodeError. */
export function storedBlockTail(bytes: Uint8Array): number {
  return storedBlockTailAt(bytes, 0, bytes.byteLength);
}

/**
 * storedBlockTail for the stored block at bytes[start, end) of a larger buffer (no view to
 * allocate per record); the tail's offset is into `bytes`. Throws DecodeError.
 */
export function storedBlockTailAt(bytes: Uint8Array, start: number, end: number): number {
  if (end - start < STORED_BLOCK.nodesAt || bytes[start] !== FORMAT) throw new DecodeError('block: unknown format or truncated');
  const tail = start + STORED_BLOCK.nodesAt + 4 * bytes[start + STORED_BLOCK.nodeCountAt]!;
  if (end < tail + STORED_BLOCK.tailBytes) throw new DecodeError('block: truncated');
  const state = bytes[tail]!;
  const pinned = bytes[tail + STORED_BLOCK.pinnedAt]!;
  if (state > 1 || pinned > 1) throw new DecodeError(`block state ${state} / pinned ${pinned}`);
  return tail;
}

/**
 * Whether a stored block is what a lookup may answer: committed, and not expired at `nowMs`
 * (undefined: no expiry check); the same rule as lookupPrefix on decoded records.
 */
export function storedBlockLive(bytes: Uint8Array, tail: number, nowMs: number | undefined): boolean {
  if (bytes[tail + STORED_BLOCK.stateAt] !== 0) return false;
  if (nowMs === undefined || bytes[tail + STORED_BLOCK.pinnedAt] === 1) return true;
  const ttl = u64At(bytes, tail + STORED_BLOCK.ttlMsAt);
  if (ttl === 0) return true;
  return Math.max(u64At(bytes, tail + STORED_BLOCK.createdAtMsAt), u64At(bytes, tail + STORED_BLOCK.lastAccessMsAt)) + ttl > nowMs;
}

export function encodeNode(n: NodeRecord): Uint8Array {
  return new Writer(128)
    .u8(FORMAT)
    .str8(n.id)
    .str16(n.address)
    .str16(n.domain)
    .f64(n.weight)
    .u8(NODE_STATES.indexOf(n.state))
    .u64(n.lastHeartbeatMs)
    .u64(n.lastHeartbeatEpoch)
    .u64(n.registeredAtMs)
    .finish();
}

export function decodeNode(bytes: Uint8Array): NodeRecord {
  const r = new Reader(bytes);
  checkFormat(r, 'node');
  const id = r.str8();
  const address = r.str16();
  const domain = r.str16();
  const weight = r.f64();
  const state = NODE_STATES[r.u8()];
  if (state === undefined) throw new DecodeError('node state');
  const n: NodeRecord = { id, address, domain, weight, state: state as NodeState, lastHeartbeatMs: r.u64(), lastHeartbeatEpoch: r.u64(), registeredAtMs: r.u64() };
  r.end();
  return n;
}

export interface ClusterMeta {
  readonly epoch: number;
  readonly rules: ClusterRules;
  /** Index the next registered node gets. */
  readonly nextNodeIndex: number;
}

export function encodeClusterMeta(m: ClusterMeta): Uint8Array {
  const w = new Writer(128).u8(FORMAT).u64(m.epoch).u32(m.rules.pgCount).u8(m.rules.domainLevels.length);
  for (const l of m.rules.domainLevels) w.str8(l);
  writeRedundancy(w, m.rules.redundancy);
  return w.str8(m.rules.failureDomain).u8(m.rules.domainCapMax).u32(m.nextNodeIndex).finish();
}

export function decodeClusterMeta(bytes: Uint8Array): ClusterMeta {
  const r = new Reader(bytes);
  checkFormat(r, 'cluster');
  const epoch = r.u64();
  const pgCount = r.u32();
  const levels: string[] = [];
  for (let i = r.u8(); i > 0; i--) levels.push(r.str8());
  const redundancy = readRedundancy(r);
  const m: ClusterMeta = { epoch, rules: { pgCount, domainLevels: levels, redundancy, failureDomain: r.str8(), domainCapMax: r.u8() }, nextNodeIndex: r.u32() };
  r.end();
  return m;
}

export function placementRulesOf(rules: ClusterRules): Parameters<typeof normalizeRules>[0] {
  return { pgCount: rules.pgCount, redundancy: rules.redundancy, failureDomain: rules.failureDomain, ...(rules.domainCapMax > 0 ? { domainCapMax: rules.domainCapMax } : {}) };
}

export function encodePgMap(m: PgMap): Uint8Array {
  const w = new Writer(64 + m.nodes.length * 48 + m.slots.length * 4).u8(FORMAT).u64(m.epoch).u32(m.nodes.length);
  for (const n of m.nodes) w.str8(n.id).f64(n.weight).str16(n.domain);
  w.u32(m.slots.length);
  for (const s of m.slots) w.u32(s);
  return w.finish();
}

export function decodePgMap(bytes: Uint8Array, rules: ClusterRules): PgMap {
  const r = new Reader(bytes);
  checkFormat(r, 'pg map');
  const epoch = r.u64();
  const nodes: PgMapNode[] = [];
  for (let i = r.u32(); i > 0; i--) nodes.push(Object.freeze({ id: r.str8(), weight: r.f64(), domain: r.str16() }));
  const count = r.u32();
  const slots = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const s = r.u32();
    if (s >= nodes.length) throw new DecodeError('pg map slot out of range');
    slots[i] = s;
  }
  r.end();
  const normalized = normalizeRules(placementRulesOf(rules));
  if (count !== normalized.pgCount * normalized.width) throw new DecodeError('pg map size does not match its rules');
  return Object.freeze({ epoch, rules: normalized, domainLevels: Object.freeze([...rules.domainLevels]), nodes: Object.freeze(nodes), slots });
}
