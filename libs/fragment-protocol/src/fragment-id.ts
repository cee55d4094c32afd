import { ByteReader, keyHash64, validateKey, validateNamespace } from '@tw/block-format';
import { fragmentProtocolErrors } from './errors.js';

/**
 * The identity of one stored fragment: (namespace, key, block version, fragment index).
 *
 * Encoded as `u8 len(ns) | ns | u16 len(key) | key | u64 version (big-endian) | u8 index`, so
 * ids of one key sort by version and a prefix of (ns, key) lists every version of a block.
 */
export interface FragmentId {
  readonly namespace: string;
  readonly key: Uint8Array;
  readonly version: bigint;
  readonly index: number;
}

const U64_MAX = (1n << 64n) - 1n;

export function encodeFragmentId(id: FragmentId): Buffer {
  validateNamespace(id.namespace);
  validateKey(id.key);
  if (id.version < 0n || id.version > U64_MAX) bad('version out of range');
  if (!Number.isInteger(id.index) || id.index < 0 || id.index > 255) bad('fragment index out of range');
  const ns = Buffer.from(id.namespace, 'latin1');
  const out = Buffer.allocUnsafe(1 + ns.length + 2 + id.key.byteLength + 8 + 1);
  let at = out.writeUInt8(ns.length, 0);
  at += ns.copy(out, at);
  at = out.writeUInt16BE(id.key.byteLength, at);
  out.set(id.key, at);
  at += id.key.byteLength;
  at = out.writeBigUInt64BE(id.version, at);
  out.writeUInt8(id.index, at);
  return out;
}

/** The id prefix shared by every fragment of every version of (namespace, key). */
export function encodeKeyPrefix(namespace: string, key: Uint8Array): Buffer {
  const full = encodeFragmentId({ namespace, key, version: 0n, index: 0 });
  return full.subarray(0, full.length - 9);
}

/** Decodes an id; untrusted input, so malformations are TW_FRAGMENT_BAD_REQUEST. */
export function decodeFragmentId(bytes: Uint8Array): FragmentId {
  try {
    const r = new ByteReader(bytes, 'fragment id');
    const namespace = Buffer.from(r.bytes(r.u8())).toString('latin1');
    const keyLength = (r.u8() << 8) | r.u8();
    const key = Buffer.from(r.bytes(keyLength));
    const hi = r.u32();
    const lo = r.u32();
    // ByteReader is little-endian; the version is big-endian on purpose (sort order).
    const version = (BigInt(swap32(hi)) << 32n) | BigInt(swap32(lo));
    const index = r.u8();
    if (r.remaining !== 0) bad(`${r.remaining} trailing bytes`);
    validateNamespace(namespace);
    validateKey(key);
    return { namespace, key, version, index };
  } catch (err) {
    if ((err as { code?: string }).code === 'TW_FRAGMENT_BAD_REQUEST') throw err;
    throw fragmentProtocolErrors.create('TW_FRAGMENT_BAD_REQUEST', `malformed fragment id: ${(err as Error).message}`, { cause: err });
  }
}

/** keyHash64 of the id's namespace and key, as the fragment header records it. */
export function fragmentIdKeyHash(id: FragmentId): bigint {
  return keyHash64(id.namespace, id.key);
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function bad(why: string): never {
  throw fragmentProtocolErrors.create('TW_FRAGMENT_BAD_REQUEST', `bad fragment id: ${why}`);
}
