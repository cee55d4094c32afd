import { FRAGMENT_HEADER_BYTES, decodeFragmentHeader, verifyFragment } from '@tw/block-format';
import type { HandlerContext, IncomingRequest, Reply, RequestHandler } from '@tw/transport';
import { fragmentProtocolErrors } from './errors.js';
import { decodeFragmentId, fragmentIdKeyHash } from './fragment-id.js';
import { type CapacityInfo, type ListEntry, Op, decodeRequest, encodeReply } from './messages.js';

/**
 * What the fragment service needs of a storage backend (an extent store). Payloads are stored
 * and returned whole: `fragment header (64 bytes) | fragment bytes`.
 */
export interface FragmentStore {
  put(id: Uint8Array, payload: Uint8Array | readonly Uint8Array[], options?: { signal?: AbortSignal }): Promise<{ seq: number }>;
  get(id: Uint8Array, options?: { signal?: AbortSignal; into?: Uint8Array }): Promise<{ bytes: Buffer; seq: number } | undefined>;
  delete(id: Uint8Array, options?: { signal?: AbortSignal }): Promise<boolean>;
  stat(id: Uint8Array): Promise<{ sizeBytes: number; seq: number } | undefined>;
  list(options: { prefix?: Uint8Array; after?: Uint8Array; limit?: number; signal?: AbortSignal }): Promise<{ entries: ListEntry[]; next?: Buffer }>;
  capacity(): CapacityInfo;
  /** Resolves once every acknowledged put is counted by capacity() (an extent store indexes behind its acknowledgements). */
  indexed?(): Promise<void>;
}

/** Reusable buffers for GET replies (a fresh multi-MiB buffer per read costs page faults). */
export interface ReadBufferPool {
  /** A buffer of at least `bytes` bytes, owned by the caller until `release`. */
  acquire(bytes: number): Buffer;
  release(buffer: Buffer): void;
}

export interface FragmentHandlerHooks {
  /** When given, GETs read into pooled buffers, released once the reply has been written. */
  readBuffers?: ReadBufferPool;
  /** Called after each request with its op name, payload bytes moved and outcome. */
  onRequest?: (op: string, bytes: number, outcome: 'ok' | 'not_found' | 'error', durationMs: number) => void;
}

const OP_NAMES: Record<number, string> = { 1: 'put', 2: 'get', 3: 'delete', 4: 'stat', 5: 'list', 6: 'capacity' };

/**
 * The storage node's side of the fragment protocol. PUT checks the fragment twice before it
 * persists anything: its header must belong to the id it is stored under, and its bytes must match
 * the header's checksum (ARCHITECTURE.md section 4, step 2).
 */
export function createFragmentHandler(store: FragmentStore, hooks: FragmentHandlerHooks = {}, now: () => number = () => 0): RequestHandler {
  return async (request: IncomingRequest, context: HandlerContext): Promise<Reply> => {
    const started = now();
    let opName = 'unknown';
    let bytes = 0;
    try {
      const req = decodeRequest(request.header);
      opName = OP_NAMES[req.op] ?? 'unknown';
      const signal = context.signal;
      let reply: Reply;
      let found = true;
      switch (req.op) {
        case Op.PUT: {
          checkFragmentPayload(req.id, request.payload);
          const { seq } = await store.put(req.id, request.payload, { signal });
          bytes = request.payload.byteLength;
          reply = { header: encodeReply({ op: Op.PUT, found: true, seq }) };
          break;
        }
        case Op.GET: {
          const pool = hooks.readBuffers;
          const st = pool === undefined ? undefined : await store.stat(req.id);
          const into = pool !== undefined && st !== undefined ? pool.acquire(st.sizeBytes) : undefined;
          let got: { bytes: Buffer; seq: number } | undefined;
          try {
            got = await store.get(req.id, into === undefined ? { signal } : { signal, into });
          } catch (err) {
            if (into !== undefined) pool!.release(into);
            throw err;
          }
          found = got !== undefined;
          bytes = got?.bytes.byteLength ?? 0;
          if (got === undefined && into !== undefined) pool!.release(into);
          reply =
            got === undefined
              ? { header: encodeReply({ op: Op.GET, found: false, seq: 0 }) }
              : { header: encodeReply({ op: Op.GET, found: true, seq: got.seq }), payload: got.bytes, ...(into === undefined ? {} : { onSent: () => pool!.release(into) }) };
          break;
        }
        case Op.DELETE:
          found = await store.delete(req.id, { signal });
          reply = { header: encodeReply({ op: Op.DELETE, found }) };
          break;
        case Op.STAT: {
          const st = await store.stat(req.id);
          found = st !== undefined;
          reply = { header: encodeReply({ op: Op.STAT, found, sizeBytes: st?.sizeBytes ?? 0, seq: st?.seq ?? 0 }) };
          break;
        }
        case Op.LIST: {
          const page = await store.list({
            prefix: req.prefix,
            ...(req.after.byteLength === 0 ? {} : { after: req.after }),
            limit: req.limit,
            signal,
          });
          reply = { header: encodeReply({ op: Op.LIST, entries: page.entries.map((e) => ({ id: e.id, sizeBytes: e.sizeBytes })), next: page.next }) };
          break;
        }
        case Op.CAPACITY:
          await store.indexed?.();
          reply = { header: encodeReply({ op: Op.CAPACITY, ...store.capacity() }) };
          break;
      }
      hooks.onRequest?.(opName, bytes, found ? 'ok' : 'not_found', now() - started);
      return reply;
    } catch (err) {
      hooks.onRequest?.(opName, bytes, 'error', now() - started);
      throw err;
    }
  };
}

/** Throws unless `payload` is a well-formed fragment (header + bytes) that belongs to `idBytes`. */
export function checkFragmentPayload(idBytes: Uint8Array, payload: Uint8Array): void {
  const id = decodeFragmentId(idBytes);
  if (payload.byteLength < FRAGMENT_HEADER_BYTES) {
    throw fragmentProtocolErrors.create('TW_FRAGMENT_BAD_REQUEST', `PUT payload of ${payload.byteLength} bytes holds no fragment header`);
  }
  const header = decodeFragmentHeader(payload.subarray(0, FRAGMENT_HEADER_BYTES));
  if (header.blockVersion !== id.version || header.fragmentIndex !== id.index || header.keyHash !== fragmentIdKeyHash(id)) {
    throw fragmentProtocolErrors.create('TW_FRAGMENT_MISMATCH', 'fragment header does not match the fragment id it was sent under', {
      details: { version: String(id.version), index: id.index },
    });
  }
  verifyFragment(header, payload.subarray(FRAGMENT_HEADER_BYTES));
}
