/**
 * Commands of the replicated state machine and their binary encoding (the bytes that go into
 * the Raft log). Layout, little-endian:
 *
 *   u8 formatVersion (1) | u8 op | u64 clientId | u64 seq | u64 nowMs | body
 *
 * `clientId` 0 means "no session" (no de-duplication: system commands whose effect is
 * conditional anyway); any other client must number its requests 1, 2, 3... (gaps allowed,
 * retries reuse the seq). `nowMs` is the proposer's clock: apply never reads a clock.
 *
 * The encoders check only what the encoding needs (field widths); everything else (key length,
 * known namespace, quota...) is checked by apply, which answers a coded result.
 */
import type { KvLayout, Redundancy } from '@tw/block-format';
import type { NodeState } from '@tw/placement';
import { DecodeError, Reader, Writer } from './bytes.js';
import { readLayout, readRedundancy, writeLayout, writeRedundancy } from './records.js';
import type { BlockRef, ClusterRules } from './types.js';

export const COMMAND_FORMAT_VERSION = 1;
/** Bytes of the envelope before the body. */
export const COMMAND_HEADER_BYTES = 26;

/** One block to commit. Absent optional fields take the namespace's defaults. */
export interface BlockCommit {
  readonly key: Uint8Array;
  readonly sizeBytes: number;
  readonly checksum: bigint;
  /** Node id holding fragment i; as many as the redundancy has fragments. */
  readonly fragmentNodes: readonly string[];
  readonly redundancy?: Redundancy;
  readonly layout?: KvLayout | null;
  readonly ttlMs?: number;
  readonly pinned?: boolean;
  /** The version the writer stored the fragments under; default: the version the map assigns. */
  readonly writeVersion?: bigint;
}

export interface NamespaceSettings {
  readonly quotaBytes: number | null;
  readonly defaultTtlMs: number;
  readonly redundancy: Redundancy;
  readonly tokenHash: Uint8Array;
}

export type Command =
  | { readonly op: 'init-cluster'; readonly rules: ClusterRules }
  | ({ readonly op: 'create-namespace'; readonly name: string } & NamespaceSettings)
  | ({ readonly op: 'update-namespace'; readonly name: string } & Partial<NamespaceSettings>)
  | { readonly op: 'delete-namespace'; readonly name: string }
  | { readonly op: 'commit-blocks'; readonly namespace: string; readonly blocks: readonly BlockCommit[] }
  | { readonly op: 'delete-blocks'; readonly namespace: string; readonly keys: readonly Uint8Array[] }
  | { readonly op: 'touch-blocks'; readonly namespace: string; readonly keys: readonly Uint8Array[] }
  /** Removes deleting versions whose deletion is at least `graceMs` old (by the command's nowMs). */
  | { readonly op: 'purge-blocks'; readonly graceMs: number; readonly refs: readonly BlockRef[] }
  | { readonly op: 'register-node'; readonly id: string; readonly address: string; readonly domain: string; readonly weight: number }
  | { readonly op: 'set-node-state'; readonly id: string; readonly state: NodeState; readonly weight?: number }
  /** Marks an up node down if it has not been recorded alive after `silentSinceMs`. */
  | { readonly op: 'mark-node-down'; readonly id: string; readonly silentSinceMs: number };

export type CommandOp = Command['op'];

export interface CommandEnvelope {
  readonly clientId: number;
  readonly seq: number;
  readonly nowMs: number;
  readonly command: Command;
}

const OP_CODES: Record<CommandOp, number> = {
  'init-cluster': 1,
  'create-namespace': 2,
  'update-namespace': 3,
  'delete-namespace': 4,
  'commit-blocks': 10,
  'delete-blocks': 11,
  'touch-blocks': 12,
  'purge-blocks': 13,
  'register-node': 20,
  'set-node-state': 21,
  'mark-node-down': 22,
};
const OPS_BY_CODE = new Map<number, CommandOp>(Object.entries(OP_CODES).map(([op, code]) => [code, op as CommandOp]));
const NODE_STATE_CODES: readonly NodeState[] = ['up', 'down', 'draining', 'out'];

const F_REDUNDANCY = 1;
const F_TTL = 2;
const F_PINNED = 4;
const F_LAYOUT = 8;
const F_WRITE_VERSION = 16;

const U_QUOTA = 1;
const U_TTL = 2;
const U_REDUNDANCY = 4;
const U_TOKEN = 8;

function writeKeys(w: Writer, keys: readonly Uint8Array[]): void {
  w.u32(keys.length);
  for (const k of keys) w.bytes16(k);
}

function readKeys(r: Reader): Uint8Array[] {
  const n = r.u32();
  if (n > r.remaining / 2) throw new DecodeError('key count exceeds the command');
  const keys: Uint8Array[] = [];
  for (let i = 0; i < n; i++) keys.push(r.bytes16());
  return keys;
}

function writeQuota(w: Writer, q: number | null): void {
  w.bool(q !== null).u64(q ?? 0);
}

function readQuota(r: Reader): number | null {
  const has = r.bool();
  const q = r.u64();
  return has ? q : null;
}

/** Encodes a command for the log. Throws TW_BLOCKMAP_BAD_COMMAND when a field does not fit its width. */
export function encodeCommand(env: CommandEnvelope): Uint8Array {
  const c = env.command;
  const w = new Writer(c.op === 'commit-blocks' ? 64 + c.blocks.length * 96 : 128);
  w.u8(COMMAND_FORMAT_VERSION).u8(OP_CODES[c.op]).u64(env.clientId).u64(env.seq).u64(env.nowMs);
  switch (c.op) {
    case 'init-cluster': {
      const r = c.rules;
      w.u32(r.pgCount).u8(r.domainLevels.length);
      for (const l of r.domainLevels) w.str8(l);
      writeRedundancy(w, r.redundancy);
      w.str8(r.failureDomain).u8(r.domainCapMax);
      break;
    }
    case 'create-namespace':
      w.str8(c.name);
      writeQuota(w, c.quotaBytes);
      w.u64(c.defaultTtlMs);
      writeRedundancy(w, c.redundancy);
      w.bytes8(c.tokenHash);
      break;
    case 'update-namespace': {
      const flags = (c.quotaBytes !== undefined ? U_QUOTA : 0) | (c.defaultTtlMs !== undefined ? U_TTL : 0) | (c.redundancy !== undefined ? U_REDUNDANCY : 0) | (c.tokenHash !== undefined ? U_TOKEN : 0);
      w.str8(c.name).u8(flags);
      if (c.quotaBytes !== undefined) writeQuota(w, c.quotaBytes);
      if (c.defaultTtlMs !== undefined) w.u64(c.defaultTtlMs);
      if (c.redundancy !== undefined) writeRedundancy(w, c.redundancy);
      if (c.tokenHash !== undefined) w.bytes8(c.tokenHash);
      break;
    }
    case 'delete-namespace':
      w.str8(c.name);
      break;
    case 'commit-blocks':
      w.str8(c.namespace).u32(c.blocks.length);
      for (const b of c.blocks) {
        const layout = b.layout ?? null;
        const flags = (b.redundancy !== undefined ? F_REDUNDANCY : 0) | (b.ttlMs !== undefined ? F_TTL : 0) | (b.pinned === true ? F_PINNED : 0) | (layout !== null ? F_LAYOUT : 0) | (b.writeVersion !== undefined ? F_WRITE_VERSION : 0);
        w.bytes16(b.key).u64(b.sizeBytes).big64(b.checksum).u8(flags);
        if (b.writeVersion !== undefined) w.big64(b.writeVersion);
        if (b.redundancy !== undefined) writeRedundancy(w, b.redundancy);
        if (b.ttlMs !== undefined) w.u64(b.ttlMs);
        if (layout !== null) writeLayout(w, layout);
        w.u8(b.fragmentNodes.length);
        for (const n of b.fragmentNodes) w.str8(n);
      }
      break;
    case 'delete-blocks':
    case 'touch-blocks':
      w.str8(c.namespace);
      writeKeys(w, c.keys);
      break;
    case 'purge-blocks':
      w.u64(c.graceMs).u32(c.refs.length);
      for (const ref of c.refs) w.str8(ref.namespace).bytes16(ref.key).u64(ref.version);
      break;
    case 'register-node':
      w.str8(c.id).str16(c.address).str16(c.domain).f64(c.weight);
      break;
    case 'set-node-state':
      w.str8(c.id).u8(NODE_STATE_CODES.indexOf(c.state)).bool(c.weight !== undefined).f64(c.weight ?? 0);
      break;
    case 'mark-node-down':
      w.str8(c.id).u64(c.silentSinceMs);
      break;
  }
  return w.finish();
}

export interface CommandHeader {
  readonly clientId: number;
  readonly seq: number;
  readonly nowMs: number;
  readonly op: CommandOp;
}

/** Decodes the envelope's header; throws DecodeError. */
export function decodeHeader(bytes: Uint8Array): CommandHeader {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== COMMAND_FORMAT_VERSION) throw new DecodeError(`command format version ${version} is not ${COMMAND_FORMAT_VERSION}`);
  const code = r.u8();
  const op = OPS_BY_CODE.get(code);
  if (op === undefined) throw new DecodeError(`unknown command op ${code}`);
  return { op, clientId: r.u64(), seq: r.u64(), nowMs: r.u64() };
}

/** Decodes a whole command; throws DecodeError (never a TypeError or RangeError). */
export function decodeCommand(bytes: Uint8Array): CommandEnvelope {
  const h = decodeHeader(bytes);
  const r = new Reader(bytes.subarray(COMMAND_HEADER_BYTES));
  const command = decodeBody(h.op, r);
  r.end();
  return { clientId: h.clientId, seq: h.seq, nowMs: h.nowMs, command };
}

function decodeBody(op: CommandOp, r: Reader): Command {
  switch (op) {
    case 'init-cluster': {
      const pgCount = r.u32();
      const domainLevels: string[] = [];
      for (let i = r.u8(); i > 0; i--) domainLevels.push(r.str8());
      const redundancy = readRedundancy(r);
      return { op, rules: { pgCount, domainLevels, redundancy, failureDomain: r.str8(), domainCapMax: r.u8() } };
    }
    case 'create-namespace':
      return { op, name: r.str8(), quotaBytes: readQuota(r), defaultTtlMs: r.u64(), redundancy: readRedundancy(r), tokenHash: r.bytes8().slice() };
    case 'update-namespace': {
      const name = r.str8();
      const flags = r.u8();
      if (flags > 15) throw new DecodeError(`update flags ${flags}`);
      return {
        op,
        name,
        ...(flags & U_QUOTA ? { quotaBytes: readQuota(r) } : {}),
        ...(flags & U_TTL ? { defaultTtlMs: r.u64() } : {}),
        ...(flags & U_REDUNDANCY ? { redundancy: readRedundancy(r) } : {}),
        ...(flags & U_TOKEN ? { tokenHash: r.bytes8().slice() } : {}),
      };
    }
    case 'delete-namespace':
      return { op, name: r.str8() };
    case 'commit-blocks': {
      const namespace = r.str8();
      const n = r.u32();
      if (n > r.remaining / 20) throw new DecodeError('record count exceeds the command');
      const blocks: BlockCommit[] = [];
      for (let i = 0; i < n; i++) {
        const key = r.bytes16();
        const sizeBytes = r.u64();
        const checksum = r.big64();
        const flags = r.u8();
        if (flags > 31) throw new DecodeError(`record flags ${flags}`);
        const writeVersion = flags & F_WRITE_VERSION ? r.big64() : undefined;
        const redundancy = flags & F_REDUNDANCY ? readRedundancy(r) : undefined;
        const ttlMs = flags & F_TTL ? r.u64() : undefined;
        const layout = flags & F_LAYOUT ? readLayout(r) : null;
        if (flags & F_LAYOUT && layout === null) throw new DecodeError('layout flag without a layout');
        const fragmentNodes: string[] = [];
        for (let j = r.u8(); j > 0; j--) fragmentNodes.push(r.str8());
        blocks.push({
          key,
          sizeBytes,
          checksum,
          fragmentNodes,
          ...(layout !== null ? { layout } : {}),
          ...(flags & F_PINNED ? { pinned: true } : {}),
          ...(redundancy !== undefined ? { redundancy } : {}),
          ...(ttlMs !== undefined ? { ttlMs } : {}),
          ...(writeVersion !== undefined ? { writeVersion } : {}),
        });
      }
      return { op, namespace, blocks };
    }
    case 'delete-blocks':
    case 'touch-blocks':
      return { op, namespace: r.str8(), keys: readKeys(r) };
    case 'purge-blocks': {
      const graceMs = r.u64();
      const n = r.u32();
      if (n > r.remaining / 11) throw new DecodeError('ref count exceeds the command');
      const refs: BlockRef[] = [];
      for (let i = 0; i < n; i++) refs.push({ namespace: r.str8(), key: r.bytes16(), version: r.u64() });
      return { op, graceMs, refs };
    }
    case 'register-node':
      return { op, id: r.str8(), address: r.str16(), domain: r.str16(), weight: r.f64() };
    case 'set-node-state': {
      const id = r.str8();
      const state = NODE_STATE_CODES[r.u8()];
      if (state === undefined) throw new DecodeError('node state');
      const hasWeight = r.bool();
      const weight = r.f64();
      return hasWeight ? { op, id, state, weight } : { op, id, state };
    }
    case 'mark-node-down':
      return { op, id: r.str8(), silentSinceMs: r.u64() };
  }
}
