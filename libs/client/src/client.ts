import type { Payload, Peer, Response, Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import { nativeErrors } from './errors.js';
import {
  CLIENT_CONNECTIONS_DEFAULT,
  CLIENT_INFLIGHT_BYTES_PER_CONNECTION_DEFAULT,
  NATIVE_DELIVER_HEAD_BYTES_MAX,
  NATIVE_LOOKUP_PAYLOAD_BYTES_MAX,
  NATIVE_PAYLOAD_BYTES_MAX,
  NATIVE_VALUE_BYTES_MAX,
} from './limits.js';
import {
  type NativeOpCode,
  type NativeReply,
  type NativeServerLimits,
  type ScatterEntry,
  NativeOp,
  decodeReply,
  encodeLookupKeys,
  encodeScatter,
  encodeRequest,
  errorOfReply,
} from './messages.js';

export interface ConnectOptions {
  /** The gateway's native endpoint, `host:port` (port 7703 on the embedded cluster). */
  readonly address: string;
  /** The namespace every call of this client acts in. */
  readonly namespace: string;
  /** The namespace's access token (from the gateway config or the coordinators); none for an open namespace. */
  readonly token?: string;
  /** Aborts connecting (the dial and the HELLO). */
  readonly signal?: AbortSignal;
  /** Connections in the pool to the gateway (default 4). */
  readonly connectionsMax?: number;
  /**
   * A transport to dial with (owned by the caller, not closed by close()); default: a TCP
   * transport of this client's own, sized for 512 MiB values.
   */
  readonly transport?: Transport;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
}

export interface ClientPutOptions extends CallOptions {
  /** `async` (default): acknowledged once the gateway holds the value in memory; `sync`: once committed. */
  readonly mode?: 'async' | 'sync';
  /** Time to live in ms; 0 or absent: the namespace default. */
  readonly ttlMs?: number;
}

export interface ClientGetOptions extends CallOptions {
  /**
   * Destination of at least the value's size: the value is read from the socket straight into it
   * and the result is a view of it. Too small: TW_TRANSPORT_DESTINATION_TOO_SMALL (the connection
   * stays usable). Without it, the value lands in a buffer of exactly its size.
   */
  readonly into?: Uint8Array;
}

export interface ClientLookupOptions extends CallOptions {
  /** Ask the gateway to start reading the hit blocks into its memory. */
  readonly prefetch?: boolean;
}

export interface ClientLookupResult {
  /** How many leading keys the gateway can serve. */
  readonly hits: number;
}

export interface ClientDeliverOptions extends CallOptions {
  /** A file the caller created in the gateway's delivery folder (`TwClient.deliveryDir`): its plain name. */
  readonly file: string;
  /** How many bytes at the end of the value are delivered; the rest (the head) comes back in the reply. */
  readonly tailBytes: number;
  /** Where each tail range goes in the file; every range inside the tail and inside the file as it is. */
  readonly scatter: readonly ScatterEntry[];
}

export interface ClientDeliverResult {
  /** The whole value's size. */
  readonly valueBytes: number;
  /** The value's first valueBytes - tailBytes bytes. */
  readonly head: Buffer;
  /** xxh64 (seed 0) of the tail, as the gateway wrote it. */
  readonly tailChecksum: bigint;
}

export type ClientKey = Uint8Array | string;

function keyBytes(key: ClientKey): Uint8Array {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
}

function valueParts(value: Uint8Array | readonly Uint8Array[]): { payload: Payload; bytes: number } {
  if (value instanceof Uint8Array) return { payload: value, bytes: value.byteLength };
  if (!Array.isArray(value)) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', 'a value is a Uint8Array or an array of them');
  let bytes = 0;
  for (const part of value) {
    if (!(part instanceof Uint8Array)) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', 'a value is a Uint8Array or an array of them');
    bytes += part.byteLength;
  }
  return { payload: value, bytes };
}

/**
 * A client of the gateway's native protocol for one namespace. Calls may run concurrently: they
 * are multiplexed over the transport's pool of connections to the gateway. Every failure is a
 * TwError: the gateway's own code when the gateway refused (TW_GATEWAY_APP_UNAUTHORIZED,
 * TW_GATEWAY_BLOCK_UNAVAILABLE, TW_KEY_TOO_LONG...), TW_TRANSPORT_* for transport failures
 * (TW_TRANSPORT_ABORTED when a call's signal aborts), TW_NATIVE_* for protocol and input errors.
 */
export class TwClient {
  #closed = false;

  constructor(
    private readonly peer: Peer,
    private readonly credentials: { readonly namespace: string; readonly token: string },
    /** What the gateway said it accepts (HELLO). */
    readonly serverLimits: NativeServerLimits,
    private readonly ownedTransport: Transport | undefined,
  ) {}

  get namespace(): string {
    return this.credentials.namespace;
  }

  /** The gateway's delivery folder for `deliver` (on the gateway's host), or '' when it has none. */
  get deliveryDir(): string {
    return this.serverLimits.deliveryDir;
  }

  /**
   * Stores `value` under `key`. The value's bytes are sent from the caller's buffers (no copy):
   * do not modify them until the promise settles. Resolves with the version the gateway assigned.
   */
  async put(key: ClientKey, value: Uint8Array | readonly Uint8Array[], options: ClientPutOptions = {}): Promise<{ version: bigint }> {
    const { payload, bytes } = valueParts(value);
    if (bytes > NATIVE_VALUE_BYTES_MAX || bytes > this.serverLimits.valueBytesMax) {
      throw nativeErrors.create('TW_NATIVE_VALUE_TOO_LARGE', `value of ${bytes} bytes is over the limit of ${Math.min(NATIVE_VALUE_BYTES_MAX, this.serverLimits.valueBytesMax)}`, {
        details: { valueBytes: bytes },
      });
    }
    const header = encodeRequest({ op: NativeOp.PUT, ...this.credentials, key: keyBytes(key), sync: options.mode === 'sync', ttlMs: options.ttlMs ?? 0 });
    const { reply } = await this.#call(NativeOp.PUT, header, payload, undefined, options.signal);
    return { version: (reply as { version: bigint }).version };
  }

  /** The value under `key`, or undefined when the gateway has none. */
  async get(key: ClientKey, options: ClientGetOptions = {}): Promise<Buffer | undefined> {
    const header = encodeRequest({ op: NativeOp.GET, ...this.credentials, key: keyBytes(key) });
    const { reply, res } = await this.#call(NativeOp.GET, header, undefined, options.into, options.signal);
    if (reply.status === 'not_found') return undefined;
    const n = (reply as { valueBytes: number }).valueBytes;
    if (res.payload.byteLength !== n) {
      throw nativeErrors.create('TW_NATIVE_MALFORMED', `GET reply announces ${n} bytes and carries ${res.payload.byteLength}`);
    }
    return Buffer.from(res.payload.buffer, res.payload.byteOffset, res.payload.byteLength);
  }

  /** Whether the gateway can serve `key` now. */
  async exists(key: ClientKey, options: CallOptions = {}): Promise<boolean> {
    const header = encodeRequest({ op: NativeOp.EXISTS, ...this.credentials, key: keyBytes(key) });
    return ((await this.#call(NativeOp.EXISTS, header, undefined, undefined, options.signal)).reply as { yes: boolean }).yes;
  }

  /** Deletes `key`; true when something was deleted. */
  async delete(key: ClientKey, options: CallOptions = {}): Promise<boolean> {
    const header = encodeRequest({ op: NativeOp.DELETE, ...this.credentials, key: keyBytes(key) });
    return ((await this.#call(NativeOp.DELETE, header, undefined, undefined, options.signal)).reply as { yes: boolean }).yes;
  }

  /** How many leading `keys` the gateway can serve (one round trip for up to 65,536 keys). */
  async lookupPrefix(keys: readonly ClientKey[], options: ClientLookupOptions = {}): Promise<ClientLookupResult> {
    if (!Array.isArray(keys)) throw nativeErrors.create('TW_NATIVE_BAD_INPUT', 'lookupPrefix takes an array of keys');
    if (keys.length > this.serverLimits.lookupKeysMax) {
      throw nativeErrors.create('TW_NATIVE_TOO_MANY_KEYS', `lookupPrefix of ${keys.length} keys; the gateway takes at most ${this.serverLimits.lookupKeysMax}`);
    }
    const payload = encodeLookupKeys(keys.map(keyBytes));
    const header = encodeRequest({ op: NativeOp.LOOKUP_PREFIX, ...this.credentials, keyCount: keys.length, prefetch: options.prefetch === true });
    const { reply } = await this.#call(NativeOp.LOOKUP_PREFIX, header, payload, undefined, options.signal);
    const hits = (reply as { hits: number }).hits;
    if (hits > keys.length) throw nativeErrors.create('TW_NATIVE_MALFORMED', `lookupPrefix reply of ${hits} hits for ${keys.length} keys`);
    return { hits };
  }

  /**
   * Has the gateway write the last `tailBytes` bytes of the value under `key` straight into
   * `file` (in its delivery folder: the client must run on the gateway's host), scattered as
   * `scatter` says; resolves with the value's head and the tail's checksum, or undefined when the
   * gateway has no such value. The file must exist and be large enough: the gateway neither
   * creates nor extends it. A value shorter than `tailBytes` fails TW_GATEWAY_APP_DELIVER_RANGE and
   * nothing is written; on any other error the scattered ranges may be partly written.
   */
  async deliver(key: ClientKey, options: ClientDeliverOptions): Promise<ClientDeliverResult | undefined> {
    const payload = encodeScatter(options.scatter, options.tailBytes);
    const header = encodeRequest({ op: NativeOp.DELIVER, ...this.credentials, key: keyBytes(key), file: options.file, tailBytes: options.tailBytes, scatterCount: options.scatter.length });
    const { reply, res } = await this.#call(NativeOp.DELIVER, header, payload, undefined, options.signal);
    if (reply.status === 'not_found') return undefined;
    const r = reply as { valueBytes: number; tailChecksum: bigint };
    const headBytes = r.valueBytes - options.tailBytes;
    if (headBytes < 0 || headBytes > NATIVE_DELIVER_HEAD_BYTES_MAX || res.payload.byteLength !== headBytes) {
      throw nativeErrors.create('TW_NATIVE_MALFORMED', `DELIVER reply for a ${r.valueBytes}-byte value and a ${options.tailBytes}-byte tail carries a head of ${res.payload.byteLength} bytes`);
    }
    return { valueBytes: r.valueBytes, head: Buffer.from(res.payload.buffer, res.payload.byteOffset, res.payload.byteLength), tailChecksum: r.tailChecksum };
  }

  /** A round trip to the gateway (no namespace work). */
  async ping(options: CallOptions = {}): Promise<void> {
    await this.#call(NativeOp.PING, encodeRequest({ op: NativeOp.PING, namespace: '', token: '' }), undefined, undefined, options.signal);
  }

  /** Closes the connections (calls in flight fail TW_TRANSPORT_CLOSED); later calls fail TW_NATIVE_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.peer.close();
    await this.ownedTransport?.close();
  }

  async #call(op: NativeOpCode, header: Buffer, payload: Payload | undefined, into: Uint8Array | undefined, signal: AbortSignal | undefined): Promise<{ reply: NativeReply; res: Response }> {
    if (this.#closed) throw nativeErrors.create('TW_NATIVE_CLOSED', 'the client is closed');
    const res = await this.peer.request(payload === undefined ? { header } : { header, payload }, { ...(into === undefined ? {} : { into }), ...(signal === undefined ? {} : { signal }) });
    const reply = decodeReply(res.header, op);
    if (reply.status === 'error') throw errorOfReply(reply);
    return { reply, res };
  }
}

/**
 * Connects to a gateway's native endpoint and authenticates (HELLO): resolves with a client once
 * the gateway accepted the namespace and token, rejects with the gateway's code
 * (TW_GATEWAY_APP_UNAUTHORIZED) otherwise.
 */
export async function connectClient(options: ConnectOptions): Promise<TwClient> {
  const credentials = { namespace: options.namespace, token: options.token ?? '' };
  const hello = encodeRequest({ op: NativeOp.HELLO, ...credentials });
  const owned =
    options.transport === undefined
      ? tcpTransport({
          payloadBytesMax: Math.max(NATIVE_PAYLOAD_BYTES_MAX, NATIVE_LOOKUP_PAYLOAD_BYTES_MAX),
          connectionsPerPeerMax: options.connectionsMax ?? CLIENT_CONNECTIONS_DEFAULT,
          inflightBytesPerConnectionMax: CLIENT_INFLIGHT_BYTES_PER_CONNECTION_DEFAULT,
        })({})
      : undefined;
  const transport = options.transport ?? owned!;
  try {
    const peer = await transport.dial(options.address, options.signal === undefined ? {} : { signal: options.signal });
    try {
      const res = await peer.request({ header: hello }, options.signal === undefined ? {} : { signal: options.signal });
      const reply = decodeReply(res.header, NativeOp.HELLO);
      if (reply.status === 'error') throw errorOfReply(reply);
      const limits = reply as NativeServerLimits;
      return new TwClient(peer, credentials, { valueBytesMax: limits.valueBytesMax, lookupKeysMax: limits.lookupKeysMax, keyBytesMax: limits.keyBytesMax, deliveryDir: limits.deliveryDir }, owned);
    } catch (err) {
      await peer.close();
      throw err;
    }
  } catch (err) {
    await owned?.close();
    throw err;
  }
}


