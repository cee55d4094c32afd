/**
 * The block map's layout in the KV store. One tag byte per table, big-endian integers in keys so
 * that byte order is numeric order:
 *
 *   00 name                               meta (applied index, next version, cluster, PG map, restore marker)
 *   01 namespace                          namespace record
 *   02 u8 nsLen ns key                    current block record (committed or deleting)
 *   03 u8 nsLen ns key u64 version        superseded version awaiting purge
 *   04 u64 sinceMs u8 nsLen ns key u64 v  purge queue: every deleting version, oldest first
 *   05 u32 nodeIndex                      node record
 *   06 u64 clientId                       client session
 *   07 u64 clientId u64 seq               remembered result of a request
 *
 * Every key of the block map starts with a tag below 0x08, so the map can share a database
 * whose other keys start at 0x08 or above (or use a sublevel).
 */

export const TAG_META = 0x00;
export const TAG_NAMESPACE = 0x01;
export const TAG_BLOCK = 0x02;
export const TAG_GARBAGE = 0x03;
export const TAG_PURGE = 0x04;
export const TAG_NODE = 0x05;
export const TAG_SESSION = 0x06;
export const TAG_RESULT = 0x07;
/** First byte past the block map's keys. */
export const TAG_END = 0x08;

const latin1 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

export const META_APPLIED = Uint8Array.from([TAG_META, ...latin1('applied')]);
export const META_NEXT_VERSION = Uint8Array.from([TAG_META, ...latin1('next-version')]);
export const META_CLUSTER = Uint8Array.from([TAG_META, ...latin1('cluster')]);
export const META_PG_MAP = Uint8Array.from([TAG_META, ...latin1('pg-map')]);
export const META_RESTORING = Uint8Array.from([TAG_META, ...latin1('restoring')]);

function putU64BE(out: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v % 0x1_0000_0000;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 0xff;
  out[at + 6] = (lo >>> 8) & 0xff;
  out[at + 7] = lo & 0xff;
}

export function getU64BE(b: Uint8Array, at: number): number {
  const hi = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  const lo = ((b[at + 4]! << 24) | (b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

export function namespaceKey(ns: string): Uint8Array {
  const out = new Uint8Array(1 + ns.length);
  out[0] = TAG_NAMESPACE;
  for (let i = 0; i < ns.length; i++) out[1 + i] = ns.charCodeAt(i);
  return out;
}

/** `02 nsLen ns` : the prefix of every block key of a namespace. */
export function blockPrefix(ns: string): Uint8Array {
  const out = new Uint8Array(2 + ns.length);
  out[0] = TAG_BLOCK;
  out[1] = ns.length;
  for (let i = 0; i < ns.length; i++) out[2 + i] = ns.charCodeAt(i);
  return out;
}

export function blockKey(ns: string, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + ns.length + key.byteLength);
  out[0] = TAG_BLOCK;
  out[1] = ns.length;
  for (let i = 0; i < ns.length; i++) out[2 + i] = ns.charCodeAt(i);
  out.set(key, 2 + ns.length);
  return out;
}

/** The user key of a block key of namespace `ns`. */
export function userKeyOf(blockKeyBytes: Uint8Array, ns: string): Uint8Array {
  return blockKeyBytes.subarray(2 + ns.length);
}

export function garbageKey(ns: string, key: Uint8Array, version: number): Uint8Array {
  const out = new Uint8Array(2 + ns.length + key.byteLength + 8);
  out[0] = TAG_GARBAGE;
  out[1] = ns.length;
  for (let i = 0; i < ns.length; i++) out[2 + i] = ns.charCodeAt(i);
  out.set(key, 2 + ns.length);
  putU64BE(out, 2 + ns.length + key.byteLength, version);
  return out;
}

export function purgeKey(sinceMs: number, ns: string, key: Uint8Array, version: number): Uint8Array {
  const out = new Uint8Array(1 + 8 + 1 + ns.length + key.byteLength + 8);
  out[0] = TAG_PURGE;
  putU64BE(out, 1, sinceMs);
  out[9] = ns.length;
  for (let i = 0; i < ns.length; i++) out[10 + i] = ns.charCodeAt(i);
  out.set(key, 10 + ns.length);
  putU64BE(out, 10 + ns.length + key.byteLength, version);
  return out;
}

export function decodePurgeKey(k: Uint8Array): { sinceMs: number; namespace: string; key: Uint8Array; version: number } {
  const sinceMs = getU64BE(k, 1);
  const nsLen = k[9]!;
  const namespace = Buffer.from(k.buffer, k.byteOffset + 10, nsLen).toString('latin1');
  const key = k.slice(10 + nsLen, k.byteLength - 8);
  const version = getU64BE(k, k.byteLength - 8);
  return { sinceMs, namespace, key, version };
}

/** Keys of the purge queue with sinceMs <= `maxSinceMs` lie below this bound. */
export function purgeKeyBound(maxSinceMs: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = TAG_PURGE;
  putU64BE(out, 1, maxSinceMs + 1);
  return out;
}

export function nodeKey(index: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = TAG_NODE;
  new DataView(out.buffer).setUint32(1, index, false);
  return out;
}

export function sessionKey(clientId: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = TAG_SESSION;
  putU64BE(out, 1, clientId);
  return out;
}

export function resultKey(clientId: number, seq: number): Uint8Array {
  const out = new Uint8Array(17);
  out[0] = TAG_RESULT;
  putU64BE(out, 1, clientId);
  putU64BE(out, 9, seq);
  return out;
}

/** `07 clientId`: prefix of every remembered result of a client. */
export function resultPrefix(clientId: number): Uint8Array {
  return resultKey(clientId, 0).subarray(0, 9);
}

export const tagKey = (tag: number): Uint8Array => Uint8Array.from([tag]);
