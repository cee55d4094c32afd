import { ByteReader, ByteWriter } from '@tw/block-format';
import { fragmentProtocolErrors } from './errors.js';
import { LIST_LIMIT_MAX, FRAGMENT_ID_BYTES_MAX } from './limits.js';

/**
 * The fragment service's request and reply headers (the transport's small `header`; fragment
 * bytes travel as the transport payload, never in headers).
 *
 * Request: `u8 protocol version (1) | u8 op | u16 reserved (0) | body`
 * Reply:   `u8 protocol version (1) | u8 op | u8 status (0 ok, 1 not found) | u8 reserved | body`
 *
 * | op | request body | request payload | reply body | reply payload |
 * | PUT | id | fragment header + bytes | u64 seq | - |
 * | GET | id | - | u64 seq | fragment header + bytes |
 * | DELETE | id | - | u8 existed | - |
 * | STAT | id | - | u64 size, u64 seq | - |
 * | LIST | prefix, after, u16 limit | - | u16 n, n x (id, u64 size), next | - |
 * | CAPACITY | - | - | u64 live, garbage, free, fragments | - |
 *
 * Byte strings (id, prefix, after, next) are `u16 length | bytes`. Integers little-endian.
 */
export const PROTOCOL_VERSION = 1;

export const Op = { PUT: 1, GET: 2, DELETE: 3, STAT: 4, LIST: 5, CAPACITY: 6 } as const;
export type OpCode = (typeof Op)[keyof typeof Op];

export type FragmentRequest =
  | { op: typeof Op.PUT | typeof Op.GET | typeof Op.DELETE | typeof Op.STAT; id: Uint8Array }
  | { op: typeof Op.LIST; prefix: Uint8Array; after: Uint8Array; limit: number }
  | { op: typeof Op.CAPACITY };

export interface CapacityInfo {
  liveBytes: number;
  garbageBytes: number;
  freeBytes: number;
  fragmentCount: number;
}

export interface ListEntry {
  id: Buffer;
  sizeBytes: number;
}

export type FragmentReply =
  | { op: typeof Op.PUT | typeof Op.GET; found: boolean; seq: number }
  | { op: typeof Op.DELETE; found: boolean }
  | { op: typeof Op.STAT; found: boolean; sizeBytes: number; seq: number }
  | { op: typeof Op.LIST; entries: ListEntry[]; next: Buffer | undefined }
  | ({ op: typeof Op.CAPACITY } & CapacityInfo);

const bstrBytes = (b: Uint8Array): number => 2 + b.byteLength;

function checkBstr(b: Uint8Array, what: string): void {
  if (b.byteLength > FRAGMENT_ID_BYTES_MAX) bad(`${what} of ${b.byteLength} bytes exceeds ${FRAGMENT_ID_BYTES_MAX}`);
}

function writeBstr(w: ByteWriter, b: Uint8Array): void {
  w.u16(b.byteLength);
  w.raw(b);
}

function readBstr(r: ByteReader, what: string): Buffer {
  const n = r.u16();
  if (n > FRAGMENT_ID_BYTES_MAX) bad(`${what} of ${n} bytes exceeds ${FRAGMENT_ID_BYTES_MAX}`);
  return Buffer.from(r.bytes(n));
}

export function encodeRequest(req: FragmentRequest): Buffer {
  let size = 4;
  if (req.op === Op.LIST) {
    checkBstr(req.prefix, 'prefix');
    checkBstr(req.after, 'after');
    size += bstrBytes(req.prefix) + bstrBytes(req.after) + 2;
  } else if (req.op !== Op.CAPACITY) {
    checkBstr(req.id, 'fragment id');
    size += bstrBytes(req.id);
  }
  const out = Buffer.allocUnsafe(size);
  const w = new ByteWriter(out);
  w.u8(PROTOCOL_VERSION);
  w.u8(req.op);
  w.u16(0);
  if (req.op === Op.LIST) {
    writeBstr(w, req.prefix);
    writeBstr(w, req.after);
    w.u16(Math.min(req.limit, LIST_LIMIT_MAX));
  } else if (req.op !== Op.CAPACITY) {
    writeBstr(w, req.id);
  }
  return out;
}

/** Decodes a request header: untrusted bytes, every malformation is TW_FRAGMENT_BAD_REQUEST. */
export function decodeRequest(bytes: Uint8Array): FragmentRequest {
  return guard(() => {
    const r = new ByteReader(bytes, 'fragment request');
    checkVersion(r.u8());
    const op = r.u8();
    if (r.u16() !== 0) bad('reserved bytes are not zero');
    let req: FragmentRequest;
    switch (op) {
      case Op.PUT:
      case Op.GET:
      case Op.DELETE:
      case Op.STAT:
        req = { op, id: readBstr(r, 'fragment id') };
        if (req.id.byteLength === 0) bad('empty fragment id');
        break;
      case Op.LIST: {
        const prefix = readBstr(r, 'prefix');
        const after = readBstr(r, 'after');
        const limit = r.u16();
        if (limit === 0 || limit > LIST_LIMIT_MAX) bad(`list limit ${limit} is not 1..${LIST_LIMIT_MAX}`);
        req = { op, prefix, after, limit };
        break;
      }
      case Op.CAPACITY:
        req = { op };
        break;
      default:
        return bad(`unknown op ${op}`);
    }
    if (r.remaining !== 0) bad(`${r.remaining} trailing bytes`);
    return req;
  });
}

export function encodeReply(reply: FragmentReply): Buffer {
  let size = 4;
  switch (reply.op) {
    case Op.PUT:
    case Op.GET:
      size += 8;
      break;
    case Op.DELETE:
      size += 1;
      break;
    case Op.STAT:
      size += 16;
      break;
    case Op.LIST:
      size += 2 + reply.entries.reduce((n, e) => n + bstrBytes(e.id) + 8, 0) + 2 + (reply.next?.byteLength ?? 0);
      break;
    case Op.CAPACITY:
      size += 32;
      break;
  }
  const out = Buffer.allocUnsafe(size);
  const w = new ByteWriter(out);
  w.u8(PROTOCOL_VERSION);
  w.u8(reply.op);
  w.u8('found' in reply && !reply.found ? 1 : 0);
  w.u8(0);
  switch (reply.op) {
    case Op.PUT:
    case Op.GET:
      w.u64(reply.seq);
      break;
    case Op.DELETE:
      w.u8(reply.found ? 1 : 0);
      break;
    case Op.STAT:
      w.u64(reply.sizeBytes);
      w.u64(reply.seq);
      break;
    case Op.LIST:
      w.u16(reply.entries.length);
      for (const e of reply.entries) {
        writeBstr(w, e.id);
        w.u64(e.sizeBytes);
      }
      writeBstr(w, reply.next ?? Buffer.alloc(0));
      break;
    case Op.CAPACITY:
      w.u64(reply.liveBytes);
      w.u64(reply.garbageBytes);
      w.u64(reply.freeBytes);
      w.u64(reply.fragmentCount);
      break;
  }
  return out;
}

/** Decodes a reply to a request of `expectedOp`. */
export function decodeReply(bytes: Uint8Array, expectedOp: OpCode): FragmentReply {
  return guard(() => {
    const r = new ByteReader(bytes, 'fragment reply');
    checkVersion(r.u8());
    const op = r.u8();
    if (op !== expectedOp) bad(`reply to op ${op}, expected ${expectedOp}`);
    const status = r.u8();
    if (status > 1) bad(`unknown status ${status}`);
    r.u8();
    const found = status === 0;
    let reply: FragmentReply;
    switch (op) {
      case Op.PUT:
      case Op.GET:
        reply = { op, found, seq: Number(r.u64()) };
        break;
      case Op.DELETE:
        reply = { op, found: r.u8() === 1 };
        break;
      case Op.STAT:
        reply = { op, found, sizeBytes: Number(r.u64()), seq: Number(r.u64()) };
        break;
      case Op.LIST: {
        const n = r.u16();
        if (n > LIST_LIMIT_MAX) bad(`list of ${n} entries`);
        const entries: ListEntry[] = [];
        for (let i = 0; i < n; i++) entries.push({ id: readBstr(r, 'fragment id'), sizeBytes: Number(r.u64()) });
        const next = readBstr(r, 'next');
        reply = { op, entries, next: next.byteLength === 0 ? undefined : next };
        break;
      }
      case Op.CAPACITY:
        reply = { op, liveBytes: Number(r.u64()), garbageBytes: Number(r.u64()), freeBytes: Number(r.u64()), fragmentCount: Number(r.u64()) };
        break;
      default:
        return bad(`unknown op ${op}`);
    }
    if (r.remaining !== 0) bad(`${r.remaining} trailing bytes`);
    return reply;
  });
}

function checkVersion(v: number): void {
  if (v !== PROTOCOL_VERSION) {
    throw fragmentProtocolErrors.create('TW_FRAGMENT_PROTOCOL_VERSION', `fragment protocol version ${v}; this build speaks ${PROTOCOL_VERSION}`);
  }
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'TW_FRAGMENT_BAD_REQUEST' || code === 'TW_FRAGMENT_PROTOCOL_VERSION') throw err;
    throw fragmentProtocolErrors.create('TW_FRAGMENT_BAD_REQUEST', `malformed fragment message: ${(err as Error).message}`, { cause: err });
  }
}

function bad(why: string): never {
  throw fragmentProtocolErrors.create('TW_FRAGMENT_BAD_REQUEST', why);
}
