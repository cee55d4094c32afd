import { EntryType, MessageType, type ConfState, type Entry, type Message, type Snapshot } from '@tw/raft';
import { raftNodeErrors } from './errors.js';
import { MESSAGE_BYTES_MAX } from './limits.js';

/**
 * Binary encoding of raft messages between coordinators (carried as bytes in gRPC's RaftPeer
 * service). A MsgSnap's snapshot travels with its metadata only: the state machine's image
 * streams separately in chunks (see RaftNode), so no message holds a whole block map in memory.
 *
 * Layout (big-endian): u8 version (1) | u8 type | u64 to | u64 from | u64 term | u64 logTerm |
 * u64 index | u64 commit | u8 reject | u64 rejectHint | u32 ctxLen | ctx | u32 nEntries |
 * n x (u64 index | u64 term | u8 type | u32 len | data) | u8 hasSnapshot |
 * [u64 index | u64 term | u32 nVoters | voters u64... | u32 nLearners | learners u64...]
 */
const VERSION = 1;
const TYPES: readonly MessageType[] = Object.values(MessageType);
const TYPE_CODE = new Map(TYPES.map((t, i) => [t, i] as const));
const ENTRY_TYPES: readonly EntryType[] = [EntryType.Normal, EntryType.ConfChange];

export function encodeMessage(m: Message): Buffer {
  let size = 1 + 1 + 8 * 6 + 1 + 8 + 4 + (m.context?.byteLength ?? 0) + 4 + 1;
  for (const e of m.entries) size += 8 + 8 + 1 + 4 + e.data.byteLength;
  const snap = m.snapshot;
  if (snap) size += 16 + 4 + 8 * snap.metadata.confState.voters.length + 4 + 8 * snap.metadata.confState.learners.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  at = out.writeUInt8(VERSION, at);
  at = out.writeUInt8(TYPE_CODE.get(m.type)!, at);
  for (const v of [m.to, m.from, m.term, m.logTerm, m.index, m.commit]) at = out.writeBigUInt64BE(BigInt(v), at);
  at = out.writeUInt8(m.reject ? 1 : 0, at);
  at = out.writeBigUInt64BE(BigInt(m.rejectHint), at);
  const ctx = m.context ?? new Uint8Array(0);
  at = out.writeUInt32BE(ctx.byteLength, at);
  out.set(ctx, at);
  at += ctx.byteLength;
  at = out.writeUInt32BE(m.entries.length, at);
  for (const e of m.entries) {
    at = out.writeBigUInt64BE(BigInt(e.index), at);
    at = out.writeBigUInt64BE(BigInt(e.term), at);
    at = out.writeUInt8(e.type === EntryType.ConfChange ? 1 : 0, at);
    at = out.writeUInt32BE(e.data.byteLength, at);
    out.set(e.data, at);
    at += e.data.byteLength;
  }
  at = out.writeUInt8(snap ? 1 : 0, at);
  if (snap) {
    at = out.writeBigUInt64BE(BigInt(snap.metadata.index), at);
    at = out.writeBigUInt64BE(BigInt(snap.metadata.term), at);
    for (const list of [snap.metadata.confState.voters, snap.metadata.confState.learners]) {
      at = out.writeUInt32BE(list.length, at);
      for (const id of list) at = out.writeBigUInt64BE(BigInt(id), at);
    }
  }
  return out;
}

/** Decodes a message from a peer; malformed bytes are TW_RAFT_NODE_BAD_MESSAGE. */
export function decodeMessage(bytes: Uint8Array): Message {
  if (bytes.byteLength > MESSAGE_BYTES_MAX) bad(`message of ${bytes.byteLength} bytes`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number): void => {
    if (at + n > b.length) bad('truncated');
  };
  const u8 = (): number => {
    need(1);
    return b.readUInt8(at++);
  };
  const u32 = (): number => {
    need(4);
    const v = b.readUInt32BE(at);
    at += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = b.readBigUInt64BE(at);
    at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad('integer out of range');
    return Number(v);
  };
  const raw = (n: number): Uint8Array => {
    need(n);
    const v = new Uint8Array(b.subarray(at, at + n)); // copy: entries outlive the RPC buffer
    at += n;
    return v;
  };
  if (u8() !== VERSION) bad('unknown version');
  const type = TYPES[u8()];
  if (type === undefined) bad('unknown message type');
  const [to, from, term, logTerm, index, commit] = [u64(), u64(), u64(), u64(), u64(), u64()];
  const reject = u8() === 1;
  const rejectHint = u64();
  const ctxLen = u32();
  const context = ctxLen > 0 ? raw(ctxLen) : undefined;
  const n = u32();
  if (n > b.length) bad('entry count');
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const eIndex = u64();
    const eTerm = u64();
    const eType = ENTRY_TYPES[u8()];
    if (eType === undefined) bad('unknown entry type');
    const len = u32();
    entries.push({ index: eIndex, term: eTerm, type: eType, data: raw(len) });
  }
  let snapshot: Snapshot | undefined;
  if (u8() === 1) {
    const sIndex = u64();
    const sTerm = u64();
    const lists: number[][] = [];
    for (let l = 0; l < 2; l++) {
      const count = u32();
      if (count > 10_000) bad('membership size');
      const ids: number[] = [];
      for (let i = 0; i < count; i++) ids.push(u64());
      lists.push(ids);
    }
    const confState: ConfState = { voters: lists[0]!, learners: lists[1]! };
    snapshot = { metadata: { index: sIndex, term: sTerm, confState }, data: new Uint8Array(0) };
  }
  if (at !== b.length) bad('trailing bytes');
  return { type, to, from, term, logTerm, index, commit, reject, rejectHint, entries, ...(context ? { context } : {}), ...(snapshot ? { snapshot } : {}) };
}

function bad(why: string): never {
  throw raftNodeErrors.create('TW_RAFT_NODE_BAD_MESSAGE', `bad raft message: ${why}`);
}
