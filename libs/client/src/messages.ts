import { ByteReader, ByteWriter, validateKey, validateNamespace } from '@tw/block-format';
import { TwError } from '@tw/errors';
import { nativeErrors } from './errors.js';
import {
  NATIVE_DELIVER_NAME_BYTES_MAX,
  NATIVE_DELIVER_SCATTER_MAX,
  NATIVE_DELIVERY_DIR_BYTES_MAX,
  NATIVE_ERROR_CODE_BYTES_MAX,
  NATIVE_ERROR_MESSAGE_BYTES_MAX,
  NATIVE_KEY_BYTES_MAX,
  NATIVE_LOOKUP_KEYS_MAX,
  NATIVE_TOKEN_BYTES_MAX,
  NATIVE_TTL_MS_MAX,
  NATIVE_VALUE_BYTES_MAX,
} from './limits.js';

/**
 * The gateway's native protocol: request and reply headers carried as the data transport's small
 * `header` (@tw/transport). Values travel as the transport's payload, never inside a header: a PUT's
 * payload is the value, a GET reply's payload is the value, a LOOKUP_PREFIX's payload is its key list.
 *
 * Request header: `u8 version (1) | u8 op | u8 flags | u8 len(ns) | ns | u16 len(token) | token | body`
 * Reply header:   `u8 version (1) | u8 op | u8 status | u8 reserved (0) | body`
 *
 * | op | flags | request body | request payload | reply body (status OK) | reply payload |
 * | HELLO | - | - | - | u32 valueBytesMax, u32 lookupKeysMax, u16 keyBytesMax, u16 len + delivery folder (UTF-8; empty: DELIVER off) | - |
 * | PING | - | - (ns and token may be empty) | - | - | - |
 * | PUT | 1: sync | key, u64 ttlMs (0: namespace default) | value | u64 version | - |
 * | GET | - | key | - | u64 valueBytes (status NOT_FOUND: empty) | value |
 * | EXISTS | - | key | - | u8 exists | - |
 * | DELETE | - | key | - | u8 deleted | - |
 * | LOOKUP_PREFIX | 2: prefetch | u32 keyCount | keyCount x key | u32 hits | - |
 * | DELIVER | - | key, u16 len + file name, u64 tailBytes, u32 scatterCount | scatterCount x (u64 tailOffset, u64 bytes, u64 fileOffset) | u64 valueBytes, u64 tailChecksum (status NOT_FOUND: empty) | the value's head |
 *
 * DELIVER is for a client on the gateway's own host (loopback only): instead of sending the value,
 * the gateway writes its last `tailBytes` bytes (the tail) into a file the client created in the
 * gateway's delivery folder (named in HELLO, on tmpfs), each scatter entry's tail range at its
 * file offset; the reply carries the value's first valueBytes - tailBytes bytes (the head, at most
 * 64 KiB) and the xxh64 (seed 0) of the tail as the gateway wrote it, so the client can check the
 * bytes against a checksum of its own without reading them. An engine that loads its KV from a
 * file (llama.cpp) gets it there without a socket in between.
 *
 * A key is `u16 length | bytes` (1..512 bytes). Every op but PING names a namespace and carries
 * the namespace's token (empty: none); the gateway checks them on every request, so any
 * connection of a pool may carry any call. Integers are little-endian.
 *
 * Status ERROR (2) replies to any op with `u8 retryable | u8 len(code) | code | u16 len(message) |
 * message`: the gateway's TW_* code (ASCII) and a UTF-8 message for humans.
 */
export const NATIVE_PROTOCOL_VERSION = 1;

export const NativeOp = { HELLO: 1, PING: 2, PUT: 3, GET: 4, EXISTS: 5, DELETE: 6, LOOKUP_PREFIX: 7, DELIVER: 8 } as const;
export type NativeOpCode = (typeof NativeOp)[keyof typeof NativeOp];
export const NATIVE_OP_NAMES: Readonly<Record<NativeOpCode, string>> = { 1: 'hello', 2: 'ping', 3: 'put', 4: 'get', 5: 'exists', 6: 'delete', 7: 'lookup_prefix', 8: 'deliver' };

export const NativeStatus = { OK: 0, NOT_FOUND: 1, ERROR: 2 } as const;

export const NativeFlag = { SYNC: 1, PREFETCH: 2 } as const;

const CODE_RE = /^TW_[A-Z0-9_]+$/;

/** Who a request acts for: the namespace and its token ('' when none). */
export interface NativeCredentials {
  readonly namespace: string;
  readonly token: string;
}

export type NativeRequest =
  | ({ readonly op: typeof NativeOp.HELLO } & NativeCredentials)
  | ({ readonly op: typeof NativeOp.PING } & NativeCredentials)
  | ({ readonly op: typeof NativeOp.PUT; readonly key: Uint8Array; readonly sync: boolean; readonly ttlMs: number } & NativeCredentials)
  | ({ readonly op: typeof NativeOp.GET | typeof NativeOp.EXISTS | typeof NativeOp.DELETE; readonly key: Uint8Array } & NativeCredentials)
  | ({ readonly op: typeof NativeOp.LOOKUP_PREFIX; readonly keyCount: number; readonly prefetch: boolean } & NativeCredentials)
  | ({ readonly op: typeof NativeOp.DELIVER; readonly key: Uint8Array; readonly file: string; readonly tailBytes: number; readonly scatterCount: number } & NativeCredentials);

/** One DELIVER scatter entry: tail bytes [tailOffset, tailOffset + bytes) go to file offset `fileOffset`. */
export interface ScatterEntry {
  readonly tailOffset: number;
  readonly bytes: number;
  readonly fileOffset: number;
}

export interface NativeServerLimits {
  readonly valueBytesMax: number;
  readonly lookupKeysMax: number;
  readonly keyBytesMax: number;
  /** The folder DELIVER writes into (absolute, on the gateway's host); '' when DELIVER is off. */
  readonly deliveryDir: string;
}

export type NativeReply =
  | ({ readonly op: typeof NativeOp.HELLO; readonly status: 'ok' } & NativeServerLimits)
  | { readonly op: typeof NativeOp.PING; readonly status: 'ok' }
  | { readonly op: typeof NativeOp.PUT; readonly status: 'ok'; readonly version: bigint }
  | { readonly op: typeof NativeOp.GET; readonly status: 'ok'; readonly valueBytes: number }
  | { readonly op: typeof NativeOp.GET; readonly status: 'not_found' }
  | { readonly op: typeof NativeOp.EXISTS | typeof NativeOp.DELETE; readonly status: 'ok'; readonly yes: boolean }
  | { readonly op: typeof NativeOp.LOOKUP_PREFIX; readonly status: 'ok'; readonly hits: number }
  | { readonly op: typeof NativeOp.DELIVER; readonly status: 'ok'; readonly valueBytes: number; readonly tailChecksum: bigint }
  | { readonly op: typeof NativeOp.DELIVER; readonly status: 'not_found' }
  | NativeErrorReply;

export interface NativeErrorReply {
  readonly op: number;
  readonly status: 'error';
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
}

function bad(why: string): never {
  throw nativeErrors.create('TW_NATIVE_MALFORMED', why);
}

/** Runs a decoder over untrusted bytes: anything but a coded TwError becomes TW_NATIVE_MALFORMED. */
function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TwError && err.code !== 'TW_HEADER_TRUNCATED' && err.code !== 'TW_HEADER_INVALID') throw err;
    throw nativeErrors.create('TW_NATIVE_MALFORMED', `malformed native ${what}: ${(err as Error).message}`, { cause: err });
  }
}

function checkVersion(v: number): void {
  if (v !== NATIVE_PROTOCOL_VERSION) {
    throw nativeErrors.create('TW_NATIVE_VERSION', `native protocol version ${v}; this build speaks ${NATIVE_PROTOCOL_VERSION}`, { details: { version: v } });
  }
}

function isOp(op: number): op is NativeOpCode {
  return Number.isInteger(op) && op >= NativeOp.HELLO && op <= NativeOp.DELIVER;
}

const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A DELIVER file name: a plain name (no folder, no leading dot), ASCII letters, digits, '.', '_', '-'. */
export function validateDeliverFileName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > NATIVE_DELIVER_NAME_BYTES_MAX || !FILE_NAME_RE.test(name)) {
    throw nativeErrors.create('TW_NATIVE_BAD_INPUT', `delivery file name ${JSON.stringify(String(name).slice(0, 80))} is not a plain name of 1..${NATIVE_DELIVER_NAME_BYTES_MAX} characters [A-Za-z0-9._-] (no leading dot)`);
  }
}

function checkTailBytes(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > NATIVE_VALUE_BYTES_MAX) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', `tailBytes ${n} is not an integer in [0, ${NATIVE_VALUE_BYTES_MAX}]`);
}

function checkScatterCount(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > NATIVE_DELIVER_SCATTER_MAX) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', `a DELIVER scatter list of ${n} entries; 1..${NATIVE_DELIVER_SCATTER_MAX}`);
}

function tokenBytes(token: string): Buffer {
  const t = Buffer.from(token, 'utf8');
  if (t.length > NATIVE_TOKEN_BYTES_MAX) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', `token of ${t.length} bytes is over ${NATIVE_TOKEN_BYTES_MAX}`);
  return t;
}

function readKey(r: ByteReader): Buffer {
  const n = r.u16();
  if (n === 0 || n > NATIVE_KEY_BYTES_MAX) {
    // The block format's codes (TW_KEY_EMPTY, TW_KEY_TOO_LONG) say what is wrong with a key.
    validateKey(new Uint8Array(n));
  }
  return Buffer.from(r.bytes(n));
}

/** Encodes a request header. Validates its fields (namespace, key, token, ttl, key count). */
export function encodeRequest(req: NativeRequest): Buffer {
  if (req.op !== NativeOp.PING || req.namespace !== '') validateNamespace(req.namespace);
  const ns = Buffer.from(req.namespace, 'latin1');
  const token = tokenBytes(req.token);
  let flags = 0;
  let body = 0;
  switch (req.op) {
    case NativeOp.HELLO:
    case NativeOp.PING:
      break;
    case NativeOp.PUT:
      validateKey(req.key);
      if (!Number.isSafeInteger(req.ttlMs) || req.ttlMs < 0 || req.ttlMs > NATIVE_TTL_MS_MAX) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', `ttlMs ${req.ttlMs} is not an integer in [0, ${NATIVE_TTL_MS_MAX}]`);
      flags = req.sync ? NativeFlag.SYNC : 0;
      body = 2 + req.key.byteLength + 8;
      break;
    case NativeOp.GET:
    case NativeOp.EXISTS:
    case NativeOp.DELETE:
      validateKey(req.key);
      body = 2 + req.key.byteLength;
      break;
    case NativeOp.LOOKUP_PREFIX:
      if (!Number.isInteger(req.keyCount) || req.keyCount < 0 || req.keyCount > NATIVE_LOOKUP_KEYS_MAX) {
        throw nativeErrors.create('TW_NATIVE_TOO_MANY_KEYS', `lookupPrefix of ${req.keyCount} keys; at most ${NATIVE_LOOKUP_KEYS_MAX}`);
      }
      flags = req.prefetch ? NativeFlag.PREFETCH : 0;
      body = 4;
      break;
    case NativeOp.DELIVER:
      validateKey(req.key);
      validateDeliverFileName(req.file);
      checkTailBytes(req.tailBytes);
      checkScatterCount(req.scatterCount);
      body = 2 + req.key.byteLength + 2 + req.file.length + 8 + 4;
      break;
    default:
      throw nativeErrors.create('TW_NATIVE_UNKNOWN_OP', `unknown op ${(req as { op: number }).op}`);
  }
  const out = Buffer.allocUnsafe(4 + ns.length + 2 + token.length + body);
  const w = new ByteWriter(out);
  w.u8(NATIVE_PROTOCOL_VERSION);
  w.u8(req.op);
  w.u8(flags);
  w.u8(ns.length);
  w.raw(ns);
  w.u16(token.length);
  w.raw(token);
  switch (req.op) {
    case NativeOp.PUT:
      w.u16(req.key.byteLength);
      w.raw(req.key);
      w.u64(req.ttlMs);
      break;
    case NativeOp.GET:
    case NativeOp.EXISTS:
    case NativeOp.DELETE:
      w.u16(req.key.byteLength);
      w.raw(req.key);
      break;
    case NativeOp.LOOKUP_PREFIX:
      w.u32(req.keyCount);
      break;
    case NativeOp.DELIVER:
      w.u16(req.key.byteLength);
      w.raw(req.key);
      w.u16(req.file.length);
      w.raw(Buffer.from(req.file, 'latin1'));
      w.u64(req.tailBytes);
      w.u32(req.scatterCount);
      break;
    default:
      break;
  }
  return out;
}

/** Decodes a request header: untrusted bytes, every malformation is a coded TwError. */
export function decodeRequest(bytes: Uint8Array): NativeRequest {
  return guard('request', () => {
    const r = new ByteReader(bytes, 'native request');
    checkVersion(r.u8());
    const op = r.u8();
    if (!isOp(op)) throw nativeErrors.create('TW_NATIVE_UNKNOWN_OP', `unknown op ${op}`, { details: { op } });
    const flags = r.u8();
    const allowed = op === NativeOp.PUT ? NativeFlag.SYNC : op === NativeOp.LOOKUP_PREFIX ? NativeFlag.PREFETCH : 0;
    if ((flags & ~allowed) !== 0) bad(`flags ${flags} not defined for op ${op}`);
    const namespace = Buffer.from(r.bytes(r.u8())).toString('latin1');
    const tokenLength = r.u16();
    if (tokenLength > NATIVE_TOKEN_BYTES_MAX) bad(`token of ${tokenLength} bytes is over ${NATIVE_TOKEN_BYTES_MAX}`);
    const tokenRaw = r.bytes(tokenLength);
    const token = Buffer.from(tokenRaw).toString('utf8');
    if (!Buffer.from(token, 'utf8').equals(tokenRaw)) bad('token is not UTF-8');
    if (op !== NativeOp.PING || namespace !== '') validateNamespace(namespace);
    let req: NativeRequest;
    switch (op) {
      case NativeOp.HELLO:
      case NativeOp.PING:
        req = { op, namespace, token };
        break;
      case NativeOp.PUT: {
        const key = readKey(r);
        const ttl = r.u64();
        if (ttl > BigInt(NATIVE_TTL_MS_MAX)) bad(`ttlMs ${ttl} is over ${NATIVE_TTL_MS_MAX}`);
        req = { op, namespace, token, key, sync: (flags & NativeFlag.SYNC) !== 0, ttlMs: Number(ttl) };
        break;
      }
      case NativeOp.GET:
      case NativeOp.EXISTS:
      case NativeOp.DELETE:
        req = { op, namespace, token, key: readKey(r) };
        break;
      case NativeOp.LOOKUP_PREFIX: {
        const keyCount = r.u32();
        if (keyCount > NATIVE_LOOKUP_KEYS_MAX) throw nativeErrors.create('TW_NATIVE_TOO_MANY_KEYS', `lookupPrefix of ${keyCount} keys; at most ${NATIVE_LOOKUP_KEYS_MAX}`);
        req = { op, namespace, token, keyCount, prefetch: (flags & NativeFlag.PREFETCH) !== 0 };
        break;
      }
      case NativeOp.DELIVER: {
        const key = readKey(r);
        const nameLength = r.u16();
        if (nameLength > NATIVE_DELIVER_NAME_BYTES_MAX) bad(`delivery file name of ${nameLength} bytes`);
        const file = Buffer.from(r.bytes(nameLength)).toString('latin1');
        if (nameLength === 0 || !FILE_NAME_RE.test(file)) bad(`delivery file name ${JSON.stringify(file.slice(0, 80))} is not a plain name`);
        const tail = r.u64();
        if (tail > BigInt(NATIVE_VALUE_BYTES_MAX)) bad(`tailBytes ${tail} is over ${NATIVE_VALUE_BYTES_MAX}`);
        const scatterCount = r.u32();
        if (scatterCount < 1 || scatterCount > NATIVE_DELIVER_SCATTER_MAX) bad(`scatter list of ${scatterCount} entries`);
        req = { op, namespace, token, key, file, tailBytes: Number(tail), scatterCount };
        break;
      }
    }
    if (r.remaining !== 0) bad(`${r.remaining} trailing bytes`);
    return req;
  });
}

/** Encodes a LOOKUP_PREFIX key list (the request's payload): `keyCount x (u16 length | key)`. */
export function encodeLookupKeys(keys: readonly Uint8Array[]): Buffer {
  if (keys.length > NATIVE_LOOKUP_KEYS_MAX) throw nativeErrors.create('TW_NATIVE_TOO_MANY_KEYS', `lookupPrefix of ${keys.length} keys; at most ${NATIVE_LOOKUP_KEYS_MAX}`);
  let size = 0;
  for (const k of keys) {
    validateKey(k);
    size += 2 + k.byteLength;
  }
  const out = Buffer.allocUnsafe(size);
  const w = new ByteWriter(out);
  for (const k of keys) {
    w.u16(k.byteLength);
    w.raw(k);
  }
  return out;
}

/** Decodes a LOOKUP_PREFIX key list of exactly `keyCount` keys; the keys are views of `payload`. */
export function decodeLookupKeys(payload: Uint8Array, keyCount: number): Buffer[] {
  return guard('lookup key list', () => {
    if (!Number.isInteger(keyCount) || keyCount < 0 || keyCount > NATIVE_LOOKUP_KEYS_MAX) {
      throw nativeErrors.create('TW_NATIVE_TOO_MANY_KEYS', `lookupPrefix of ${keyCount} keys; at most ${NATIVE_LOOKUP_KEYS_MAX}`);
    }
    const r = new ByteReader(payload, 'native lookup key list');
    const keys: Buffer[] = [];
    for (let i = 0; i < keyCount; i++) {
      const n = r.u16();
      if (n === 0 || n > NATIVE_KEY_BYTES_MAX) validateKey(new Uint8Array(n));
      const k = r.bytes(n);
      keys.push(Buffer.from(k.buffer, k.byteOffset, k.byteLength));
    }
    if (r.remaining !== 0) bad(`${r.remaining} bytes after ${keyCount} keys`);
    return keys;
  });
}

/** Encodes a DELIVER scatter list (the request's payload), checking each entry against `tailBytes`. */
export function encodeScatter(entries: readonly ScatterEntry[], tailBytes: number): Buffer {
  checkTailBytes(tailBytes);
  checkScatterCount(entries.length);
  const out = Buffer.allocUnsafe(entries.length * 24);
  const w = new ByteWriter(out);
  for (const e of entries) {
    checkScatterEntry(e, tailBytes, (why) => {
      throw nativeErrors.create('TW_NATIVE_BAD_INPUT', why);
    });
    w.u64(e.tailOffset);
    w.u64(e.bytes);
    w.u64(e.fileOffset);
  }
  return out;
}

function checkScatterEntry(e: ScatterEntry, tailBytes: number, fail: (why: string) => never): void {
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!ok(e.tailOffset) || !ok(e.bytes) || !ok(e.fileOffset) || e.bytes === 0) fail(`scatter entry ${JSON.stringify(e)} is not three non-negative integers with bytes > 0`);
  if (e.tailOffset + e.bytes > tailBytes) fail(`scatter entry [${e.tailOffset}, +${e.bytes}) is outside the ${tailBytes}-byte tail`);
  if (e.fileOffset + e.bytes > Number.MAX_SAFE_INTEGER) fail('scatter entry file range overflows');
}

/** Decodes a DELIVER scatter list of exactly `count` entries, each inside the `tailBytes` tail. */
export function decodeScatter(payload: Uint8Array, count: number, tailBytes: number): ScatterEntry[] {
  return guard('scatter list', () => {
    if (!Number.isInteger(count) || count < 1 || count > NATIVE_DELIVER_SCATTER_MAX) bad(`scatter list of ${count} entries`);
    const r = new ByteReader(payload, 'native scatter list');
    const out: ScatterEntry[] = [];
    const u = (): number => {
      const v = r.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`scatter value ${v} is too large`);
      return Number(v);
    };
    for (let i = 0; i < count; i++) {
      const e = { tailOffset: u(), bytes: u(), fileOffset: u() };
      checkScatterEntry(e, tailBytes, bad);
      out.push(e);
    }
    if (r.remaining !== 0) bad(`${r.remaining} bytes after ${count} scatter entries`);
    return out;
  });
}

/** The error reply for `err` (a TwError keeps its code; anything else is TW_GATEWAY_INTERNAL). */
export function errorReplyOf(op: number, err: unknown): NativeErrorReply {
  const tw = err instanceof TwError && CODE_RE.test(err.code) && err.code.length <= NATIVE_ERROR_CODE_BYTES_MAX ? err : undefined;
  const message = err instanceof Error ? err.message : String(err);
  return { op, status: 'error', code: tw?.code ?? 'TW_GATEWAY_INTERNAL', message, retryable: tw?.retryable ?? false };
}

/** Cuts a UTF-8 string to at most `max` bytes without splitting a character. */
function utf8Prefix(s: string, max: number): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

export function encodeReply(reply: NativeReply): Buffer {
  let status: number = NativeStatus.OK;
  let body = 0;
  let code: Buffer | undefined;
  let message: Buffer | undefined;
  let dir: Buffer | undefined;
  switch (reply.status) {
    case 'error':
      status = NativeStatus.ERROR;
      if (!CODE_RE.test(reply.code) || reply.code.length > NATIVE_ERROR_CODE_BYTES_MAX) bad(`error code ${JSON.stringify(reply.code.slice(0, 80))} is not a TW_* code`);
      code = Buffer.from(reply.code, 'latin1');
      message = utf8Prefix(reply.message, NATIVE_ERROR_MESSAGE_BYTES_MAX);
      body = 1 + 1 + code.length + 2 + message.length;
      break;
    case 'not_found':
      status = NativeStatus.NOT_FOUND;
      break;
    case 'ok':
      switch (reply.op) {
        case NativeOp.HELLO:
          dir = Buffer.from(reply.deliveryDir, 'utf8');
          if (dir.length > NATIVE_DELIVERY_DIR_BYTES_MAX) bad(`delivery folder of ${dir.length} bytes`);
          body = 12 + dir.length;
          break;
        case NativeOp.PUT:
        case NativeOp.GET:
          body = 8;
          break;
        case NativeOp.DELIVER:
          body = 16;
          break;
        case NativeOp.EXISTS:
        case NativeOp.DELETE:
          body = 1;
          break;
        case NativeOp.LOOKUP_PREFIX:
          body = 4;
          break;
        default:
          break;
      }
      break;
  }
  const out = Buffer.allocUnsafe(4 + body);
  const w = new ByteWriter(out);
  w.u8(NATIVE_PROTOCOL_VERSION);
  w.u8(reply.op);
  w.u8(status);
  w.u8(0);
  if (reply.status === 'error') {
    w.u8(reply.retryable ? 1 : 0);
    w.u8(code!.length);
    w.raw(code!);
    w.u16(message!.length);
    w.raw(message!);
  } else if (reply.status === 'ok') {
    switch (reply.op) {
      case NativeOp.HELLO:
        w.u32(reply.valueBytesMax);
        w.u32(reply.lookupKeysMax);
        w.u16(reply.keyBytesMax);
        w.u16(dir!.length);
        w.raw(dir!);
        break;
      case NativeOp.PUT:
        w.u64(reply.version);
        break;
      case NativeOp.DELIVER:
        w.u64(reply.valueBytes);
        w.u64(reply.tailChecksum);
        break;
      case NativeOp.GET:
        w.u64(reply.valueBytes);
        break;
      case NativeOp.EXISTS:
      case NativeOp.DELETE:
        w.u8(reply.yes ? 1 : 0);
        break;
      case NativeOp.LOOKUP_PREFIX:
        w.u32(reply.hits);
        break;
      default:
        break;
    }
  }
  return out;
}

/** Decodes a reply to a request of `expectedOp`: untrusted bytes, every malformation is a coded TwError. */
export function decodeReply(bytes: Uint8Array, expectedOp: NativeOpCode): NativeReply {
  return guard('reply', () => {
    const r = new ByteReader(bytes, 'native reply');
    checkVersion(r.u8());
    const op = r.u8();
    if (op !== expectedOp) bad(`reply to op ${op}, expected ${expectedOp}`);
    const status = r.u8();
    if (r.u8() !== 0) bad('reserved byte is not zero');
    let reply: NativeReply;
    if (status === NativeStatus.ERROR) {
      const retryable = r.u8();
      if (retryable > 1) bad(`retryable flag ${retryable}`);
      const code = Buffer.from(r.bytes(r.u8())).toString('latin1');
      if (!CODE_RE.test(code) || code.length > NATIVE_ERROR_CODE_BYTES_MAX) bad(`error reply code ${JSON.stringify(code.slice(0, 80))} is not a TW_* code`);
      const messageLength = r.u16();
      if (messageLength > NATIVE_ERROR_MESSAGE_BYTES_MAX) bad(`error message of ${messageLength} bytes`);
      const message = Buffer.from(r.bytes(messageLength)).toString('utf8');
      reply = { op, status: 'error', code, message, retryable: retryable === 1 };
    } else if (status === NativeStatus.NOT_FOUND) {
      if (op === NativeOp.GET) reply = { op, status: 'not_found' };
      else if (op === NativeOp.DELIVER) reply = { op, status: 'not_found' };
      else return bad(`status not-found in a reply to op ${op}`);
    } else if (status === NativeStatus.OK) {
      switch (expectedOp) {
        case NativeOp.HELLO: {
          const valueBytesMax = r.u32();
          const lookupKeysMax = r.u32();
          const keyBytesMax = r.u16();
          const dirLength = r.u16();
          if (dirLength > NATIVE_DELIVERY_DIR_BYTES_MAX) bad(`delivery folder of ${dirLength} bytes`);
          const deliveryDir = Buffer.from(r.bytes(dirLength)).toString('utf8');
          reply = { op: expectedOp, status: 'ok', valueBytesMax, lookupKeysMax, keyBytesMax, deliveryDir };
          break;
        }
        case NativeOp.PING:
          reply = { op: expectedOp, status: 'ok' };
          break;
        case NativeOp.PUT:
          reply = { op: expectedOp, status: 'ok', version: r.u64() };
          break;
        case NativeOp.GET: {
          const n = r.u64();
          if (n > BigInt(NATIVE_VALUE_BYTES_MAX)) bad(`value of ${n} bytes is over ${NATIVE_VALUE_BYTES_MAX}`);
          reply = { op: expectedOp, status: 'ok', valueBytes: Number(n) };
          break;
        }
        case NativeOp.EXISTS:
        case NativeOp.DELETE: {
          const b = r.u8();
          if (b > 1) bad(`boolean ${b}`);
          reply = { op: expectedOp, status: 'ok', yes: b === 1 };
          break;
        }
        case NativeOp.LOOKUP_PREFIX:
          reply = { op: expectedOp, status: 'ok', hits: r.u32() };
          break;
        case NativeOp.DELIVER: {
          const n = r.u64();
          if (n > BigInt(NATIVE_VALUE_BYTES_MAX)) bad(`value of ${n} bytes is over ${NATIVE_VALUE_BYTES_MAX}`);
          reply = { op: expectedOp, status: 'ok', valueBytes: Number(n), tailChecksum: r.u64() };
          break;
        }
        default:
          return bad(`unknown op ${String(expectedOp)}`);
      }
    } else {
      return bad(`unknown status ${status}`);
    }
    if (r.remaining !== 0) bad(`${r.remaining} trailing bytes`);
    return reply;
  });
}

/** The TwError an error reply stands for: the gateway's code, message and retryable flag. */
export function errorOfReply(reply: NativeErrorReply): TwError {
  return new TwError(reply.code, reply.message, { retryable: reply.retryable });
}
