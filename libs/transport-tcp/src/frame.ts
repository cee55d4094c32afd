import { TwError } from '@tw/errors';
import {
  FrameKind,
  HEADER_BYTES_MAX,
  PAYLOAD_BYTES_MAX_CAP,
  REMOTE_ERROR_BYTES_MAX,
  transportErrors,
  WIRE_MAGIC,
  WIRE_PREFIX_BYTES,
  WIRE_VERSION,
  type Payload,
} from '@tw/transport';

export interface FramePrefix {
  readonly kind: FrameKind;
  readonly id: number;
  readonly headerBytes: number;
  readonly payloadBytes: number;
}

/** The payload as a list of non-empty chunks. */
export function payloadChunks(payload: Payload | undefined): readonly Uint8Array[] {
  if (payload === undefined) return [];
  if (payload instanceof Uint8Array) return payload.length === 0 ? [] : [payload];
  return payload.filter((p) => p.length > 0);
}

export function chunksBytes(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/** Prefix and header in one small buffer (headers are small; payloads are never copied). */
export function encodeFrameHead(kind: FrameKind, id: number, header: Uint8Array, payloadBytes: number): Buffer {
  const head = Buffer.allocUnsafe(WIRE_PREFIX_BYTES + header.length);
  head.writeUInt16LE(WIRE_MAGIC, 0);
  head.writeUInt8(WIRE_VERSION, 2);
  head.writeUInt8(kind, 3);
  head.writeUInt32LE(id, 4);
  head.writeUInt32LE(header.length, 8);
  head.writeUInt32LE(payloadBytes, 12);
  head.set(header, WIRE_PREFIX_BYTES);
  return head;
}

/** Decodes and validates a 16-byte prefix; throws TW_TRANSPORT_MALFORMED_FRAME on garbage. */
export function decodeFramePrefix(buf: Buffer): FramePrefix {
  const malformed = (why: string): TwError => transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', `malformed frame: ${why}`);
  if (buf.readUInt16LE(0) !== WIRE_MAGIC) throw malformed('bad magic');
  if (buf.readUInt8(2) !== WIRE_VERSION) throw malformed(`unsupported version ${buf.readUInt8(2)}`);
  const kind = buf.readUInt8(3);
  if (kind < FrameKind.REQUEST || kind > FrameKind.CANCEL) throw malformed(`unknown kind ${kind}`);
  const id = buf.readUInt32LE(4);
  const headerBytes = buf.readUInt32LE(8);
  const payloadBytes = buf.readUInt32LE(12);
  if (headerBytes > HEADER_BYTES_MAX) throw malformed(`header of ${headerBytes} bytes is over ${HEADER_BYTES_MAX}`);
  if (payloadBytes > PAYLOAD_BYTES_MAX_CAP) throw malformed(`payload of ${payloadBytes} bytes is over the cap ${PAYLOAD_BYTES_MAX_CAP}`);
  if (kind === FrameKind.CANCEL && (headerBytes !== 0 || payloadBytes !== 0)) throw malformed('cancel frame with a body');
  if (kind === FrameKind.ERROR && payloadBytes !== 0) throw malformed('error frame with a payload');
  if (kind !== FrameKind.ERROR && id === 0) throw malformed('request id 0');
  return { kind: kind as FrameKind, id, headerBytes, payloadBytes };
}

/** Encodes an error for an ERROR frame's header: code, message, retryable, details (bounded). */
export function encodeRemoteError(err: unknown): Buffer {
  const tw = err instanceof TwError ? err : undefined;
  const body = {
    code: tw?.code ?? 'TW_TRANSPORT_REMOTE_ERROR',
    message: (err instanceof Error ? err.message : String(err)).slice(0, 1024),
    retryable: tw?.retryable ?? false,
    details: tw?.details,
  };
  let bytes = Buffer.from(JSON.stringify(body));
  if (bytes.length > REMOTE_ERROR_BYTES_MAX) bytes = Buffer.from(JSON.stringify({ ...body, details: undefined }));
  return bytes;
}

/** Rebuilds the remote error as a TwError with the same code; garbage gives MALFORMED_FRAME. */
export function decodeRemoteError(header: Uint8Array): TwError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header.buffer, header.byteOffset, header.length).toString('utf8'));
  } catch (cause) {
    return transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', 'error frame header is not JSON', { cause });
  }
  const o = parsed as { code?: unknown; message?: unknown; retryable?: unknown; details?: unknown };
  if (typeof o !== 'object' || o === null || typeof o.code !== 'string' || !/^TW_[A-Z0-9_]+$/.test(o.code)) {
    return transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', 'error frame without a valid code');
  }
  const details = typeof o.details === 'object' && o.details !== null ? (o.details as Record<string, unknown>) : undefined;
  return new TwError(o.code, typeof o.message === 'string' ? o.message : o.code, {
    retryable: o.retryable === true,
    ...(details === undefined ? {} : { details }),
  });
}
