import { engineProtocolErrors } from './errors.js';
import { LM_KEY_BYTES, LM_PAYLOAD_BYTES_MAX, LM_REPLY_HEADER_BYTES, LM_REQUEST_HEADER_BYTES } from './limits.js';
import { PieceCollector } from './piece-collector.js';

/**
 * LMCache's `lm://` protocol (lmcache/v1/protocol.py at c1a02cc, server lmcache/v1/server):
 * plain TCP, Python `struct` without a prefix, so native little-endian int32 on x86.
 *
 *   request  ClientMetaMessage "iiiiiiiii150s" (186 B):
 *            command, length, fmt, dtype, location, shape0..3, key (UTF-8, right-padded with
 *            spaces; the server .strip()s it)
 *   reply    ServerMetaMessage "iiiiiiiii" (36 B):
 *            code, length, fmt, dtype, shape0..3, location   (location last, unlike the request)
 *
 * PUT: header then `length` payload bytes, no reply. GET: reply header, then `length` bytes when
 * the code is 200, none on 400. EXIST and HEALTH: header-only reply. LIST is defined but the
 * reference server ignores it (no reply).
 */
export const LM_COMMAND = { PUT: 1, GET: 2, EXIST: 3, LIST: 4, HEALTH: 5 } as const;
export type LmCommand = (typeof LM_COMMAND)[keyof typeof LM_COMMAND];

/** Reply codes (Constants.SERVER_SUCCESS / SERVER_FAIL). */
export const LM_CODE = { SUCCESS: 200, FAIL: 400 } as const;

/** MemoryFormat values (enum order of lmcache/v1/memory_management.py). */
export const LM_MEMORY_FORMAT = {
  UNDEFINED: 0,
  KV_2LTD: 1,
  KV_T2D: 2,
  KV_2TD: 3,
  BINARY: 4,
  BINARY_BUFFER: 5,
  KV_MLA_FMT: 6,
  KV_DSA_INDEX_FMT: 7,
} as const;

/** DTYPE_TO_INT. torch.half and torch.float16 are one object in Python, so float16 encodes as 2. */
export const LM_DTYPE = {
  NONE: 0,
  HALF: 1,
  FLOAT16: 2,
  BFLOAT16: 3,
  FLOAT32: 4,
  FLOAT64: 5,
  UINT8: 6,
  FLOAT8_E4M3FN: 7,
  FLOAT8_E5M2: 8,
} as const;

/** LOCATION_TO_INT. */
export const LM_LOCATION = { NONE: 0, LOCAL_CPU_BACKEND: 1, LOCAL_DISK_BACKEND: 2 } as const;

export type LmShape = readonly [number, number, number, number];

/** The fixed fields of a request header (ClientMetaMessage). */
export interface LmRequestHeader {
  readonly command: number;
  /** Payload bytes that follow a PUT; 0 otherwise. */
  readonly length: number;
  readonly fmt: number;
  readonly dtype: number;
  readonly location: number;
  readonly shape: LmShape;
  /** The key, UTF-8 decoded and stripped of surrounding whitespace as the server's .strip() does. */
  readonly key: string;
}

/** A parsed request: the header, and for PUT its payload. */
export interface LmRequest extends LmRequestHeader {
  readonly command: LmCommand;
  /** PUT's payload (one buffer, copied once if it arrived in pieces); null for other commands. */
  readonly payload: Buffer | null;
}

/** A reply header (ServerMetaMessage). */
export interface LmReplyHeader {
  readonly code: number;
  /** Payload bytes that follow a successful GET reply. */
  readonly length: number;
  readonly fmt: number;
  readonly dtype: number;
  readonly shape: LmShape;
  readonly location: number;
}

/**
 * The reply the reference server sends for a miss (GET, EXIST) and, with code 200, for HEALTH and
 * a hit of EXIST: length 0, fmt KV_2LTD, dtype float16 (2), shape 0,0,0,0, location 0.
 */
export function lmStatusReply(code: number): Buffer {
  return encodeLmReplyHeader({ code, length: 0, fmt: LM_MEMORY_FORMAT.KV_2LTD, dtype: LM_DTYPE.FLOAT16, shape: [0, 0, 0, 0], location: LM_LOCATION.NONE });
}

/** `lmStatusReply(400)`: GET miss, EXIST miss. */
export const LM_FAIL_REPLY: Buffer = lmStatusReply(LM_CODE.FAIL);
/** `lmStatusReply(200)`: HEALTH, EXIST hit. */
export const LM_SUCCESS_REPLY: Buffer = lmStatusReply(LM_CODE.SUCCESS);

function checkInt32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_FIELD', `lm:// field ${name}=${v} is not an int32`, { details: { field: name } });
  }
}

function checkShape(shape: readonly number[]): void {
  if (shape.length !== 4) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_FIELD', `lm:// shape has ${shape.length} dimensions, not 4`, { details: { field: 'shape' } });
  }
  shape.forEach((d, i) => checkInt32(`shape${i}`, d));
}

/** The 186-byte request header, the key UTF-8 encoded and right-padded with spaces (ljust). */
export function encodeLmRequestHeader(header: LmRequestHeader): Buffer {
  const key = Buffer.from(header.key, 'utf8');
  if (key.length > LM_KEY_BYTES) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_KEY', `lm:// key of ${key.length} bytes, at most ${LM_KEY_BYTES}`, { details: { keyBytes: key.length } });
  }
  const fields: [string, number][] = [
    ['command', header.command],
    ['length', header.length],
    ['fmt', header.fmt],
    ['dtype', header.dtype],
    ['location', header.location],
  ];
  checkShape(header.shape);
  const out = Buffer.alloc(LM_REQUEST_HEADER_BYTES, 0x20);
  fields.forEach(([name, v], i) => {
    checkInt32(name, v);
    out.writeInt32LE(v, i * 4);
  });
  header.shape.forEach((d, i) => out.writeInt32LE(d, 20 + i * 4));
  key.copy(out, 36);
  return out;
}

/** The 36-byte reply header (location last). */
export function encodeLmReplyHeader(header: LmReplyHeader): Buffer {
  const values: [string, number][] = [
    ['code', header.code],
    ['length', header.length],
    ['fmt', header.fmt],
    ['dtype', header.dtype],
  ];
  checkShape(header.shape);
  checkInt32('location', header.location);
  const out = Buffer.allocUnsafe(LM_REPLY_HEADER_BYTES);
  values.forEach(([name, v], i) => {
    checkInt32(name, v);
    out.writeInt32LE(v, i * 4);
  });
  header.shape.forEach((d, i) => out.writeInt32LE(d, 16 + i * 4));
  out.writeInt32LE(header.location, 32);
  return out;
}

/** A whole GET hit: reply header and payload pieces, to write back-to-back. */
export function encodeLmGetReply(meta: Omit<LmReplyHeader, 'code' | 'length'>, payload: Buffer | readonly Buffer[]): Buffer[] {
  const pieces = Buffer.isBuffer(payload) ? [payload] : [...payload];
  let length = 0;
  for (const p of pieces) length += p.length;
  return [encodeLmReplyHeader({ ...meta, code: LM_CODE.SUCCESS, length }), ...pieces.filter((p) => p.length > 0)];
}

/** Python's str.isspace() code points: what the reference server's .strip() removes. */
const PY_WHITESPACE: ReadonlySet<number> = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

function pythonStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && PY_WHITESPACE.has(s.charCodeAt(start))) start++;
  while (end > start && PY_WHITESPACE.has(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a 186-byte request header (validates command, PUT length and key). */
export function decodeLmRequestHeader(bytes: Buffer): LmRequestHeader & { readonly command: LmCommand } {
  if (bytes.length !== LM_REQUEST_HEADER_BYTES) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_FIELD', `lm:// request header of ${bytes.length} bytes, not ${LM_REQUEST_HEADER_BYTES}`);
  }
  const command = bytes.readInt32LE(0);
  if (command < LM_COMMAND.PUT || command > LM_COMMAND.HEALTH) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_COMMAND', `lm:// command ${command} is not one LMCache defines`, { details: { command } });
  }
  const length = bytes.readInt32LE(4);
  if (command === LM_COMMAND.PUT && (length < 0 || length > LM_PAYLOAD_BYTES_MAX)) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_LENGTH', `lm:// PUT of ${length} bytes (0..${LM_PAYLOAD_BYTES_MAX})`, { details: { length } });
  }
  let key: string;
  try {
    key = pythonStrip(UTF8.decode(bytes.subarray(36, 36 + LM_KEY_BYTES)));
  } catch (cause) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_KEY', 'lm:// key is not UTF-8', { cause });
  }
  if (key.length === 0) throw engineProtocolErrors.create('TW_LMCACHE_WIRE_KEY', 'lm:// key is empty');
  return {
    command: command as LmCommand,
    length,
    fmt: bytes.readInt32LE(8),
    dtype: bytes.readInt32LE(12),
    location: bytes.readInt32LE(16),
    shape: [bytes.readInt32LE(20), bytes.readInt32LE(24), bytes.readInt32LE(28), bytes.readInt32LE(32)],
    key,
  };
}

/** Decodes a 36-byte reply header. */
export function decodeLmReplyHeader(bytes: Buffer): LmReplyHeader {
  if (bytes.length !== LM_REPLY_HEADER_BYTES) {
    throw engineProtocolErrors.create('TW_LMCACHE_WIRE_FIELD', `lm:// reply header of ${bytes.length} bytes, not ${LM_REPLY_HEADER_BYTES}`);
  }
  return {
    code: bytes.readInt32LE(0),
    length: bytes.readInt32LE(4),
    fmt: bytes.readInt32LE(8),
    dtype: bytes.readInt32LE(12),
    shape: [bytes.readInt32LE(16), bytes.readInt32LE(20), bytes.readInt32LE(24), bytes.readInt32LE(28)],
    location: bytes.readInt32LE(32),
  };
}

/** Fixed-size header gathered across chunks (copied: at most 186 bytes). */
class HeaderReader {
  private readonly buf: Buffer;
  private used = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  take(chunk: Buffer, from: number): number {
    const n = Math.min(chunk.length - from, this.buf.length - this.used);
    chunk.copy(this.buf, this.used, from, from + n);
    this.used += n;
    return n;
  }
  get complete(): boolean {
    return this.used === this.buf.length;
  }
  /** The header bytes; the reader starts over. */
  finish(): Buffer {
    this.used = 0;
    return this.buf;
  }
}

/** Common queue of pushed chunks for the two lm:// parsers. */
abstract class ChunkQueue {
  protected queue: Buffer[] = [];
  protected queued = 0;

  /** Bytes pushed and not yet parsed (the caller's back-pressure signal). */
  get bufferedBytes(): number {
    return this.queued;
  }

  /** Adds bytes read from the connection; views of `chunk` are kept, do not reuse it. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
  }

  /** Feeds the head chunk to `take` until it stops taking or the queue is empty. */
  protected drain(take: (chunk: Buffer) => number, done: () => boolean): boolean {
    while (!done()) {
      const head = this.queue[0];
      if (head === undefined) return false;
      const n = take(head);
      this.queued -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    return true;
  }
}

/**
 * Incremental parser of `lm://` requests. A PUT is returned once its whole payload arrived;
 * nothing is allocated for payload bytes not yet received. Errors are TwErrors
 * (TW_LMCACHE_WIRE_*): the stream cannot be re-synchronised, close the connection; the parser
 * keeps throwing the error.
 */
export class LmRequestParser extends ChunkQueue {
  private readonly header = new HeaderReader(LM_REQUEST_HEADER_BYTES);
  private pending: (LmRequestHeader & { readonly command: LmCommand }) | null = null;
  private payload: PieceCollector | null = null;
  private failure: unknown = null;

  override push(chunk: Buffer): void {
    if (this.failure === null) super.push(chunk);
  }

  /** The next complete request, or null until more bytes arrive. */
  next(): LmRequest | null {
    if (this.failure !== null) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      this.failure = err;
      this.queue = [];
      this.queued = 0;
      this.payload = null;
      throw err;
    }
  }

  private step(): LmRequest | null {
    if (this.pending === null) {
      if (!this.drain((c) => this.header.take(c, 0), () => this.header.complete)) return null;
      const header = decodeLmRequestHeader(this.header.finish());
      if (header.command !== LM_COMMAND.PUT) return { ...header, payload: null };
      this.pending = header;
      this.payload = new PieceCollector(header.length);
    }
    const payload = this.payload!;
    if (!this.drain((c) => payload.take(c, 0), () => payload.missing === 0)) return null;
    const request: LmRequest = { ...this.pending, payload: payload.join() };
    this.pending = null;
    this.payload = null;
    return request;
  }
}

/** A parsed reply: its header and, for a successful GET, its payload. */
export interface LmReply {
  readonly header: LmReplyHeader;
  readonly payload: Buffer | null;
}

/**
 * Incremental parser of `lm://` replies (the client side). A payload follows a header when its
 * code is 200 and its length is positive (a GET hit); EXIST/HEALTH replies carry length 0.
 */
export class LmReplyParser extends ChunkQueue {
  private readonly header = new HeaderReader(LM_REPLY_HEADER_BYTES);
  private pending: LmReplyHeader | null = null;
  private payload: PieceCollector | null = null;
  private failure: unknown = null;

  next(): LmReply | null {
    if (this.failure !== null) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      this.failure = err;
      this.queue = [];
      this.queued = 0;
      throw err;
    }
  }

  private step(): LmReply | null {
    if (this.pending === null) {
      if (!this.drain((c) => this.header.take(c, 0), () => this.header.complete)) return null;
      const header = decodeLmReplyHeader(this.header.finish());
      if (header.length < 0 || header.length > LM_PAYLOAD_BYTES_MAX) {
        throw engineProtocolErrors.create('TW_LMCACHE_WIRE_LENGTH', `lm:// reply announces ${header.length} bytes`, { details: { length: header.length } });
      }
      if (header.code !== LM_CODE.SUCCESS || header.length === 0) return { header, payload: null };
      this.pending = header;
      this.payload = new PieceCollector(header.length);
    }
    const payload = this.payload!;
    if (!this.drain((c) => payload.take(c, 0), () => payload.missing === 0)) return null;
    const reply: LmReply = { header: this.pending, payload: payload.join() };
    this.pending = null;
    this.payload = null;
    return reply;
  }
}
