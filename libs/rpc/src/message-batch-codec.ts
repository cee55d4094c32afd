/**
 * A hand-written protobuf encoder for tw.raft.v1.MessageBatch (`uint64 from = 1; repeated bytes
 * messages = 2;`), the message of every Raft send. protobufjs's writer builds an op list and then
 * copies each message into a fresh buffer; this sizes the batch first and copies each message
 * once. The output is the same protobuf bytes (decoded by the generated decoder on the other
 * side; test/message-batch-codec.test.ts checks the two against each other).
 */
import { rpcErrors } from './errors.js';

/** Bytes of `n` as a protobuf varint (n a safe non-negative integer). */
function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    bytes++;
  }
  return bytes;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/** Encodes a MessageBatch; `from` is the sender's node id as a decimal string (a safe integer). */
export function encodeMessageBatch(batch: { from: string; messages: readonly Uint8Array[] }): Buffer {
  const from = Number(batch.from);
  if (!Number.isSafeInteger(from) || from < 0) throw rpcErrors.create('TW_RPC_INTERNAL', `raft message batch: bad sender id ${batch.from}`);
  // Field 1 is written even when 0, as protobufjs does (both are valid proto3 encodings).
  let size = 1 + varintBytes(from);
  for (const m of batch.messages) size += 1 + varintBytes(m.byteLength) + m.byteLength;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = 0x08; // field 1, varint
  at = writeVarint(out, at, from);
  for (const m of batch.messages) {
    out[at++] = 0x12; // field 2, length-delimited
    at = writeVarint(out, at, m.byteLength);
    out.set(m, at);
    at += m.byteLength;
  }
  return out;
}
