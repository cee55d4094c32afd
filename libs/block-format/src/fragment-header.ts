import { ByteReader, ByteWriter } from './byte-reader.js';
import { checksum64 } from './checksum.js';
import { blockFormatErrors } from './errors.js';
import { type Redundancy, fragmentBytes, fragmentCount, validateRedundancy } from './fragment-size.js';
import { FRAGMENT_MAX_BYTES, PAYLOAD_MAX_BYTES } from './limits.js';

/**
 * The fixed 64-byte header of each stored fragment. It makes a fragment self-describing on
 * disk, so a storage node's index and the coordinators' block map can be rebuilt from extents.
 *
 * ```
 * off size field
 *   0    4 magic "TWFG"
 *   4    2 format version (1)
 *   6    1 redundancy kind: 0 = ec, 1 = replicate, 2 = none
 *   7    1 fragment index (0 .. fragments-1)
 *   8    1 k (ec) or 1
 *   9    1 m (ec), n - 1 (replicate) or 0 (none)
 *  10    2 reserved, 0
 *  12    4 fragment length in bytes
 *  16    8 key hash (keyHash64 of namespace and key)
 *  24    8 block version
 *  32    8 block payload length in bytes
 *  40    8 fragment checksum (xxh64 of the fragment's bytes)
 *  48    8 reserved, 0
 *  56    8 header checksum: xxh64 of bytes 0..55
 * ```
 */
export interface FragmentHeader {
  readonly redundancy: Redundancy;
  readonly fragmentIndex: number;
  readonly fragmentLength: number;
  readonly keyHash: bigint;
  readonly blockVersion: bigint;
  readonly payloadLength: number;
  readonly fragmentChecksum: bigint;
}

export const FRAGMENT_MAGIC = Buffer.from('TWFG', 'latin1');
export const FRAGMENT_FORMAT_VERSION = 1;
export const FRAGMENT_HEADER_BYTES = 64;
const KIND_CODES = { ec: 0, replicate: 1, none: 2 } as const;
const U64_MAX = (1n << 64n) - 1n;

export function encodeFragmentHeader(h: FragmentHeader, out: Uint8Array = Buffer.alloc(FRAGMENT_HEADER_BYTES)): Uint8Array {
  validateFragmentHeader(h);
  if (out.byteLength < FRAGMENT_HEADER_BYTES) invalid('buffer', `output buffer of ${out.byteLength} bytes`);
  const w = new ByteWriter(out);
  const r = h.redundancy;
  w.raw(FRAGMENT_MAGIC);
  w.u16(FRAGMENT_FORMAT_VERSION);
  w.u8(KIND_CODES[r.kind]);
  w.u8(h.fragmentIndex);
  w.u8(r.kind === 'ec' ? r.k : 1);
  w.u8(r.kind === 'ec' ? r.m : r.kind === 'replicate' ? r.n - 1 : 0);
  w.u16(0);
  w.u32(h.fragmentLength);
  w.u64(h.keyHash);
  w.u64(h.blockVersion);
  w.u64(h.payloadLength);
  w.u64(h.fragmentChecksum);
  w.u64(0n);
  w.u64(checksum64(out.subarray(0, 56)));
  return out.subarray(0, FRAGMENT_HEADER_BYTES);
}

/** Decodes the header at the start of `bytes`. Untrusted input: malformations are coded errors. */
export function decodeFragmentHeader(bytes: Uint8Array): FragmentHeader {
  const r = new ByteReader(bytes, 'fragment header');
  if (!FRAGMENT_MAGIC.equals(r.bytes(4))) throw blockFormatErrors.create('TW_HEADER_BAD_MAGIC', 'not a fragment header (bad magic)');
  const version = r.u16();
  if (version !== FRAGMENT_FORMAT_VERSION) {
    throw blockFormatErrors.create('TW_HEADER_BAD_VERSION', `fragment header version ${version}; this build reads ${FRAGMENT_FORMAT_VERSION}`, {
      details: { version },
    });
  }
  if (bytes.byteLength < FRAGMENT_HEADER_BYTES) {
    throw blockFormatErrors.create('TW_HEADER_TRUNCATED', `fragment header truncated: ${bytes.byteLength} of ${FRAGMENT_HEADER_BYTES} bytes`);
  }
  const stored = new DataView(bytes.buffer, bytes.byteOffset + 56, 8).getBigUint64(0, true);
  if (stored !== checksum64(bytes.subarray(0, 56))) throw blockFormatErrors.create('TW_HEADER_CHECKSUM', 'fragment header checksum mismatch');
  const kind = r.u8();
  const fragmentIndex = r.u8();
  const k = r.u8();
  const m = r.u8();
  if (r.u16() !== 0) invalid('reserved', 'reserved bytes are not zero');
  const fragmentLength = r.u32();
  const keyHash = r.u64();
  const blockVersion = r.u64();
  const payloadLength = r.u64AsNumber('payloadLength', PAYLOAD_MAX_BYTES);
  const fragmentChecksum = r.u64();
  if (r.u64() !== 0n) invalid('reserved', 'reserved bytes are not zero');
  let redundancy: Redundancy;
  if (kind === KIND_CODES.ec) redundancy = { kind: 'ec', k, m };
  else if (kind === KIND_CODES.replicate && k === 1) redundancy = { kind: 'replicate', n: m + 1 };
  else if (kind === KIND_CODES.none && k === 1 && m === 0) redundancy = { kind: 'none' };
  else invalid('redundancy', `kind ${kind} with k=${k} m=${m}`);
  const h: FragmentHeader = { redundancy, fragmentIndex, fragmentLength, keyHash, blockVersion, payloadLength, fragmentChecksum };
  validateFragmentHeader(h);
  return h;
}

/** Throws TW_HEADER_INVALID unless the fields are mutually consistent. */
export function validateFragmentHeader(h: FragmentHeader): void {
  try {
    validateRedundancy(h.redundancy);
  } catch (err) {
    invalid('redundancy', (err as Error).message);
  }
  if (!Number.isInteger(h.fragmentIndex) || h.fragmentIndex < 0 || h.fragmentIndex >= fragmentCount(h.redundancy)) {
    invalid('fragmentIndex', `${h.fragmentIndex} is not below ${fragmentCount(h.redundancy)}`);
  }
  if (!Number.isInteger(h.payloadLength) || h.payloadLength < 0 || h.payloadLength > PAYLOAD_MAX_BYTES) invalid('payloadLength', 'out of range');
  const expected = fragmentBytes(h.redundancy, h.payloadLength);
  if (expected > FRAGMENT_MAX_BYTES) invalid('fragmentLength', `a fragment of ${expected} bytes exceeds ${FRAGMENT_MAX_BYTES}`);
  if (h.fragmentLength !== expected) invalid('fragmentLength', `${h.fragmentLength}, expected ${expected} for a ${h.payloadLength}-byte payload`);
  for (const [field, v] of [['keyHash', h.keyHash], ['blockVersion', h.blockVersion], ['fragmentChecksum', h.fragmentChecksum]] as const) {
    if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) invalid(field, 'must be an unsigned 64-bit bigint');
  }
}

/** Throws TW_CHECKSUM_MISMATCH unless `fragment` matches the header's length and checksum. */
export function verifyFragment(h: FragmentHeader, fragment: Uint8Array): void {
  if (fragment.byteLength !== h.fragmentLength) {
    throw blockFormatErrors.create('TW_CHECKSUM_MISMATCH', `fragment has ${fragment.byteLength} bytes; header says ${h.fragmentLength}`, {
      details: { fragmentIndex: h.fragmentIndex },
    });
  }
  if (checksum64(fragment) !== h.fragmentChecksum) {
    throw blockFormatErrors.create('TW_CHECKSUM_MISMATCH', `fragment ${h.fragmentIndex} checksum mismatch`, { details: { fragmentIndex: h.fragmentIndex } });
  }
}

function invalid(field: string, why: string): never {
  throw blockFormatErrors.create('TW_HEADER_INVALID', `fragment header field ${field}: ${why}`, { details: { field } });
}
