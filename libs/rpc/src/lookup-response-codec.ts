/**
 * The LookupPrefix answer's serializer on the server. An answer with packed records (or none) is
 * a few scalars and one large bytes field; protobufjs copies that field into its writer and again
 * into the finished buffer (and converts the object first). This one writes the scalars and copies
 * the packed records once; answers with message-form records go to protobufjs. The bytes are
 * those protobufjs writes (fields in number order, each one that is set, zeros included): the
 * test checks it.
 */
import type { LookupPrefixResponseMsg } from './messages.js';

const TAG_HITS = (1 << 3) | 0; // uint32 hits = 1
const TAG_APPLIED_INDEX = (3 << 3) | 0; // uint64 applied_index = 3
const TAG_PACKED_RECORDS = (4 << 3) | 2; // bytes packed_records = 4
const TAG_KEYS_READ = (5 << 3) | 0; // uint32 keys_read = 5

function varintBytes(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function writeVarint(out: Buffer, at: number, v: bigint): number {
  while (v >= 0x80n) {
    out[at++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[at++] = Number(v);
  return at;
}

/**
 * The answer is written into this reused buffer: grpc-js copies a serializer's output into its
 * own length-prefixed frame before it returns (server-interceptors' serializeMessage), so the
 * bytes are not needed afterwards. A fresh ~130 KB buffer per lookup added to the external memory
 * that makes V8 run full collections (which mark the whole record cache). A test runs concurrent
 * lookups and checks every answer. Answers above SCRATCH_MAX_BYTES get their own buffer.
 */
const SCRATCH_MAX_BYTES = 4 * 1024 * 1024;
let scratch: Buffer | undefined;

function outputBuffer(size: number): Buffer {
  if (size > SCRATCH_MAX_BYTES) return Buffer.allocUnsafe(size);
  if (scratch === undefined || scratch.byteLength < size) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, Math.max(size, 2 * (scratch?.byteLength ?? 0))));
  return scratch.subarray(0, size);
}

/** Wraps protobufjs's serializer (`fallback`) with the fast path for answers without message records. */
export function lookupResponseSerializer(fallback: (value: unknown) => Buffer): (value: unknown) => Buffer {
  return (value: unknown): Buffer => {
    const res = value as LookupPrefixResponseMsg;
    // Message records, or an applied index that is not a plain decimal u64: protobufjs (it
    // refuses or converts what this does not handle).
    if (!Array.isArray(res.records) || res.records.length > 0 || typeof res.appliedIndex !== 'string' || !/^\d{1,20}$/.test(res.appliedIndex) || BigInt(res.appliedIndex) >= 1n << 64n) return fallback(value);
    // As protobufjs: a field is written when it is set (not null or undefined), zero or not.
    const hits = res.hits == null ? undefined : BigInt(res.hits >>> 0);
    const applied = BigInt(res.appliedIndex);
    const packed = res.packedRecords ?? undefined;
    const keysRead = res.keysRead == null ? undefined : BigInt(res.keysRead >>> 0);
    let size = 1 + varintBytes(applied);
    if (hits !== undefined) size += 1 + varintBytes(hits);
    if (packed !== undefined) size += 1 + varintBytes(BigInt(packed.length)) + packed.length;
    if (keysRead !== undefined) size += 1 + varintBytes(keysRead);
    const out = outputBuffer(size);
    let at = 0;
    if (hits !== undefined) {
      out[at++] = TAG_HITS;
      at = writeVarint(out, at, hits);
    }
    out[at++] = TAG_APPLIED_INDEX;
    at = writeVarint(out, at, applied);
    if (packed !== undefined) {
      out[at++] = TAG_PACKED_RECORDS;
      at = writeVarint(out, at, BigInt(packed.length));
      out.set(packed, at);
      at += packed.length;
    }
    if (keysRead !== undefined) {
      out[at++] = TAG_KEYS_READ;
      at = writeVarint(out, at, keysRead);
    }
    return out;
  };
}
