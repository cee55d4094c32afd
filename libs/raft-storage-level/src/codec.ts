/**
 * On-disk encoding of the raft log in LevelDB. Keys: one tag byte, then for entries the index as
 * 8 bytes big-endian so that LevelDB's byte order is index order.
 *
 *   'e' + u64 index -> u64 term | u8 type | data
 *   'h'             -> u64 term | u64 vote | u64 commit            (hard state)
 *   'm'             -> u64 index | u64 term   (the compaction point: the entry before firstIndex)
 *   'c'             -> JSON conf state
 *   's'             -> u32 header length | JSON metadata | data      (latest snapshot)
 *
 * Integers are safe integers written as unsigned 64-bit.
 */
import { EntryType, type ConfState, type Entry, type HardState, type Snapshot, type SnapshotMetadata } from '@tw/raft';
import { raftStorageErrors } from './errors.js';

const TAG_ENTRY = 0x65; // 'e'
export const KEY_HARD_STATE = Uint8Array.of(0x68); // 'h'
export const KEY_COMPACTED = Uint8Array.of(0x6d); // 'm'
export const KEY_CONF_STATE = Uint8Array.of(0x63); // 'c'
export const KEY_SNAPSHOT = Uint8Array.of(0x73); // 's'
export const ENTRY_KEY_MIN = Uint8Array.of(TAG_ENTRY);
export const ENTRY_KEY_END = Uint8Array.of(TAG_ENTRY + 1);

const TYPE_CODES: Record<EntryType, number> = { [EntryType.Normal]: 0, [EntryType.ConfChange]: 1 };
const TYPE_BY_CODE: readonly EntryType[] = [EntryType.Normal, EntryType.ConfChange];

function corrupt(what: string): Error {
  return raftStorageErrors.create('TW_RAFT_STORAGE_CORRUPT', `raft log on disk: ${what}`);
}

function writeU64(view: DataView, at: number, value: number): void {
  view.setBigUint64(at, BigInt(value));
}

function readU64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} ${v} is not a safe integer`);
  return Number(v);
}

export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = TAG_ENTRY;
  writeU64(new DataView(key.buffer), 1, index);
  return key;
}

export function decodeEntryKey(key: Uint8Array): number {
  if (key.byteLength !== 9 || key[0] !== TAG_ENTRY) throw corrupt('bad entry key');
  return readU64(new DataView(key.buffer, key.byteOffset, key.byteLength), 1, 'entry index');
}

export function encodeEntry(e: Entry): Uint8Array {
  const out = new Uint8Array(9 + e.data.byteLength);
  const view = new DataView(out.buffer);
  writeU64(view, 0, e.term);
  view.setUint8(8, TYPE_CODES[e.type]);
  out.set(e.data, 9);
  return out;
}

export function decodeEntry(index: number, bytes: Uint8Array): Entry {
  if (bytes.byteLength < 9) throw corrupt(`entry ${index} is ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = TYPE_BY_CODE[view.getUint8(8)];
  if (type === undefined) throw corrupt(`entry ${index} has type code ${view.getUint8(8)}`);
  return { index, term: readU64(view, 0, 'entry term'), type, data: bytes.subarray(9) };
}

export function encodeHardState(hs: HardState): Uint8Array {
  const out = new Uint8Array(24);
  const view = new DataView(out.buffer);
  writeU64(view, 0, hs.term);
  writeU64(view, 8, hs.vote);
  writeU64(view, 16, hs.commit);
  return out;
}

export function decodeHardState(bytes: Uint8Array): HardState {
  if (bytes.byteLength !== 24) throw corrupt('hard state length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { term: readU64(view, 0, 'term'), vote: readU64(view, 8, 'vote'), commit: readU64(view, 16, 'commit') };
}

export function encodeIndexTerm(index: number, term: number): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  writeU64(view, 0, index);
  writeU64(view, 8, term);
  return out;
}

export function decodeIndexTerm(bytes: Uint8Array): { index: number; term: number } {
  if (bytes.byteLength !== 16) throw corrupt('compaction point length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { index: readU64(view, 0, 'index'), term: readU64(view, 8, 'term') };
}

export function encodeConfState(cs: ConfState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ voters: cs.voters, learners: cs.learners }));
}

function parseConfState(value: unknown): ConfState {
  const v = value as { voters?: unknown; learners?: unknown } | null;
  const ids = (x: unknown): x is number[] => Array.isArray(x) && x.every((n) => Number.isSafeInteger(n) && (n as number) > 0);
  if (v === null || typeof v !== 'object' || !ids(v.voters) || !ids(v.learners)) throw corrupt('conf state');
  return { voters: v.voters, learners: v.learners };
}

export function decodeConfState(bytes: Uint8Array): ConfState {
  try {
    return parseConfState(JSON.parse(new TextDecoder().decode(bytes)));
  } catch (err) {
    if (err instanceof SyntaxError) throw corrupt('conf state is not JSON');
    throw err;
  }
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ index: s.metadata.index, term: s.metadata.term, confState: s.metadata.confState }));
  const out = new Uint8Array(4 + header.byteLength + s.data.byteLength);
  new DataView(out.buffer).setUint32(0, header.byteLength);
  out.set(header, 4);
  out.set(s.data, 4 + header.byteLength);
  return out;
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  if (bytes.byteLength < 4) throw corrupt('snapshot length');
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + headerLen > bytes.byteLength) throw corrupt('snapshot header length');
  let raw: { index?: unknown; term?: unknown; confState?: unknown };
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLen))) as typeof raw;
  } catch {
    throw corrupt('snapshot header is not JSON');
  }
  if (!Number.isSafeInteger(raw.index) || !Number.isSafeInteger(raw.term)) throw corrupt('snapshot index/term');
  const metadata: SnapshotMetadata = { index: raw.index as number, term: raw.term as number, confState: parseConfState(raw.confState) };
  return { metadata, data: bytes.subarray(4 + headerLen) };
}
