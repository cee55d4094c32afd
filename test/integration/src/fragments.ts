import { checksum64, encodeFragmentHeader, keyHash64, type FragmentHeader } from '@tw/block-format';
import type { FragmentId } from '@tw/fragment-protocol';

/** xorshift32: deterministic test data from a seed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

export function fillBytes(buf: Buffer, seed: number): Buffer {
  const next = rng(seed);
  for (let i = 0; i + 4 <= buf.length; i += 4) buf.writeUInt32LE((next() * 0x1_0000_0000) >>> 0, i);
  for (let i = buf.length - (buf.length % 4); i < buf.length; i++) buf[i] = (next() * 256) | 0;
  return buf;
}

/** A replicated (`replicate:1`-shaped, i.e. whole-payload) test fragment with a valid header. */
export function makeFragment(namespace: string, keyText: string, version: bigint, bytes: Buffer): { id: FragmentId; header: FragmentHeader; bytes: Buffer } {
  const key = Buffer.from(keyText);
  const header: FragmentHeader = {
    redundancy: { kind: 'none' },
    fragmentIndex: 0,
    fragmentLength: bytes.length,
    keyHash: keyHash64(namespace, key),
    blockVersion: version,
    payloadLength: bytes.length,
    fragmentChecksum: checksum64(bytes),
  };
  return { id: { namespace, key, version, index: 0 }, header, bytes };
}

export { encodeFragmentHeader };
