/**
 * The data-plane transport contract (ARCHITECTURE.md section 6): request-response between a
 * gateway and storage nodes, built for fragments of 256 KiB - 64 MiB at GB/s.
 *
 * A message is a small `header` (an encoded op: fragment id, offsets, status) plus an optional
 * large `payload` (fragment bytes). Headers are always copied (they are small); payloads are
 * never copied on the send side and, where the backend can, land directly in a caller-supplied
 * destination on the receive side.
 *
 * Errors: every failure is a TwError. Transport failures carry the TW_TRANSPORT_* codes of
 * `transportErrors`; an error thrown by the remote handler as a TwError is rethrown to the
 * caller as a TwError with the same `code`, `message`, `retryable` and `details`.
 */

/** Bytes to send: one Buffer, or several sent back to back as one payload (gather write). */
export type Payload = Uint8Array | readonly Uint8Array[];

export interface OutgoingRequest {
  /**
   * The encoded op. Copied into the frame when the call is made: the caller may reuse it as soon
   * as `request()` returns its promise.
   */
  readonly header: Uint8Array;
  /**
   * Optional payload. BORROWED, not copied: the transport writes these exact bytes to the wire
   * (header and payload in one gather write). The caller must not modify them until the returned
   * promise settles. A frame that was already handed to the socket cannot be recalled, so after
   * an abort the transport may still read the payload until the connection has written it; a
   * caller that recycles payload buffers must not recycle the payload of an aborted call before
   * `Peer.close()` resolves or, cheaper, should treat that buffer as lost to the pool.
   */
  readonly payload?: Payload;
}

export interface RequestOptions {
  /**
   * Destination for the response payload. When given, the payload bytes are written into it
   * (directly from the socket where the backend can: no intermediate copy) and the response's
   * `payload` is a view of its first `payloadBytes` bytes. If the payload does not fit, the call
   * fails with TW_TRANSPORT_DESTINATION_TOO_SMALL and the connection stays usable. The
   * transport writes into `into` only until the call settles: once it rejects (abort included),
   * no more bytes are written into it. May be the buffer of a registered MemoryRegion.
   */
  readonly into?: Uint8Array;
  /**
   * With `into`: called as response payload bytes land in it, with the count in so far, so a
   * caller can hash or forward the first bytes while the rest is on the wire. Strictly increasing
   * counts; when it runs, `into[0, receivedBytes)` holds the payload's first bytes and is never
   * written again by this call. The last call, with the full length, comes before the promise
   * resolves. Never called after the call settled (aborted, failed). Runs on the receive path:
   * return quickly, do not throw (a throw fails the call with that error; the rest of the payload
   * is then discarded, not written into `into`). Backends may report in any steps (per socket
   * read, or once with everything).
   */
  readonly onPayloadBytes?: (receivedBytes: number) => void;
  /**
   * Aborts the call: it rejects at once with TW_TRANSPORT_ABORTED (the signal's reason as
   * cause), the peer's handler is told (its signal aborts), and the late response is discarded.
   */
  readonly signal?: AbortSignal;
}

export interface Response {
  /** The peer's reply header. Owned by the caller (a fresh copy). */
  readonly header: Uint8Array;
  /**
   * The reply payload, `payloadBytes` long. With `into`: a view of `into`. Without: a Buffer the
   * transport allocated for this response and hands over to the caller (no other reference).
   * Empty when the reply has no payload.
   */
  readonly payload: Uint8Array;
}

/** What a server handler receives. */
export interface IncomingRequest {
  /** The request header; owned by the handler (a fresh copy). */
  readonly header: Buffer;
  /**
   * The request payload (empty when none): a Buffer view of the received bytes, in memory the
   * transport never reuses, so the handler may keep it (e.g. write it to disk after replying):
   * the ListenOptions.payloadDestination buffer when one was given, else a buffer of exactly its
   * size. (A backend that cannot read into chosen buffers may hand out a view of a larger receive
   * buffer for small payloads: copy small payloads you keep for long.)
   */
  readonly payload: Buffer;
}

export interface Reply {
  /** The reply header; copied into the frame when the handler's promise resolves. */
  readonly header: Uint8Array;
  /**
   * Optional reply payload, one Buffer or a list (gather write, e.g. record header + bytes read
   * from an extent). BORROWED until `onSent` runs: the transport writes these exact bytes to the
   * wire, so the handler must not modify or recycle them before.
   */
  readonly payload?: Payload;
  /** Called once the payload's bytes were written or the connection died: buffers may be recycled. */
  readonly onSent?: () => void;
}

export interface HandlerContext {
  /** Aborts when the client aborted the call, the connection closed, or the listener is aborted. */
  readonly signal: AbortSignal;
  /** The remote side's address, for logs. */
  readonly remoteAddress: string;
}

/**
 * Serves one request. Many run concurrently (bounded per connection). Throw a TwError to send
 * its code to the caller; any other thrown value reaches the caller as TW_TRANSPORT_REMOTE_ERROR.
 */
export type RequestHandler = (request: IncomingRequest, context: HandlerContext) => Reply | Promise<Reply>;

/** A handle on a remote node: a small pool of connections, multiplexed and pipelined. */
export interface Peer {
  /** The address as dialled. */
  readonly address: string;
  /**
   * Sends a request and resolves with the response. Many calls may be in flight at once; each
   * settles independently (responses may complete out of call order). Calls beyond the pool's
   * in-flight bounds wait (abortably) for a slot; beyond WAITING_PER_PEER_MAX they are refused
   * with TW_TRANSPORT_QUEUE_FULL.
   */
  request(request: OutgoingRequest, options?: RequestOptions): Promise<Response>;
  /** Closes the pool: pending calls reject with TW_TRANSPORT_CLOSED; resolves when sockets are gone. */
  close(): Promise<void>;
}

export interface Listener {
  /** The bound address (with the port chosen by the system when asked for port 0). */
  readonly address: string;
  /**
   * Stops accepting, lets handlers in flight finish and their replies flush, then closes every
   * connection. Resolves when nothing of the listener is left.
   */
  close(): Promise<void>;
  /** Drops every connection at once, as a crashed process would; handlers' signals abort. */
  abort(): Promise<void>;
}

/**
 * Picks where a request's payload is received, once its header is in: a buffer of at least
 * `payloadBytes` (the handler's `req.payload` is then a view of it), a PayloadSink (the same, plus
 * progress as the bytes arrive), or undefined to let the transport allocate one. Lets a server
 * receive into pooled, pre-faulted or aligned buffers (a storage node: straight into a direct-I/O
 * write buffer) instead of a fresh allocation per request, which at 8 MiB costs more than the
 * copy itself. The buffer stays the server's: the transport writes into it only until the handler
 * is called (or the connection dies first). A throw fails that request with the thrown error (the
 * connection stays up; the payload is discarded).
 */
export type PayloadDestination = (header: Buffer, payloadBytes: number) => Uint8Array | PayloadSink | undefined;

/**
 * A payload destination that also watches the payload arrive, so a server can work on the first
 * bytes (hash them, write them to disk) while the rest is still on the wire.
 *
 * Ordering and ownership, for one request:
 * - `onBytes(receivedBytes)` runs zero or more times, synchronously from the transport's receive
 *   path, with strictly increasing counts. When it runs, `buffer[0, receivedBytes)` holds the
 *   payload's first bytes and the transport never writes them again; bytes past it are not yet
 *   valid. A backend may report in any steps (per socket read, or once with everything).
 * - Then exactly one of: the handler is called (after a last `onBytes(payloadBytes)`: the whole
 *   payload is in), or `onAbandon(reason)` runs once (the connection died or was aborted, the
 *   listener was aborted, or the client cancelled the call before its payload was all in) and the
 *   handler is never called for this request. After `onAbandon` the transport writes nothing more
 *   into `buffer`, so the server may take it back at once.
 * - Both callbacks must not throw and should return quickly (they run on the receive path): start
 *   asynchronous work, do not await it there. A throw is reported to ListenOptions.onError and the
 *   request is treated as abandoned (`onAbandon` runs, the handler is not called, the caller gets
 *   the error).
 */
export interface PayloadSink {
  /** Where the payload is received: at least `payloadBytes` long. */
  readonly buffer: Uint8Array;
  /** Progress: `buffer[0, receivedBytes)` is final (see the ordering above). */
  readonly onBytes?: (receivedBytes: number) => void;
  /** The payload will never be complete and the handler will not run; `reason` is a TW_TRANSPORT_* error. */
  readonly onAbandon?: (reason: Error) => void;
}

export interface ListenOptions {
  /** Where request payloads are received; default: a fresh buffer per payload. */
  readonly payloadDestination?: PayloadDestination;
  /**
   * Called for connection-level failures that no caller sees: malformed frames, oversized frames,
   * sockets that error. The connection concerned is closed (or the frame refused) by then.
   */
  readonly onError?: (error: Error) => void;
  readonly signal?: AbortSignal;
}

export interface DialOptions {
  readonly signal?: AbortSignal;
}

/**
 * A registered memory region: needed by RDMA backends so the NIC can read or write it directly;
 * a no-op (empty key) on TCP and in memory. Register long-lived pool buffers once, not per call.
 */
export interface MemoryRegion {
  readonly buffer: Uint8Array;
  /** Remote key a peer needs for one-sided access; empty where the backend has none. */
  readonly remoteKey: Uint8Array;
  /** Releases the registration; the buffer itself stays the caller's. */
  deregister(): void;
}

export interface TransportStats {
  /** Listeners open. */
  readonly listeners: number;
  /** Connections open, dialled and accepted. */
  readonly connections: number;
  /** Client calls not yet settled (in flight or waiting for a slot). */
  readonly pendingRequests: number;
}

export interface Transport {
  /** Backend name, for logs and metrics: 'tcp', 'memory', 'ucx'. */
  readonly name: string;
  /** Starts serving `handler` on `address` (TCP: 'host:port', port 0 picks one). */
  listen(address: string, handler: RequestHandler, options?: ListenOptions): Promise<Listener>;
  /** Connects to a listener; the first connection is opened before this resolves. */
  dial(address: string, options?: DialOptions): Promise<Peer>;
  registerMemory(buffer: Uint8Array): MemoryRegion;
  stats(): TransportStats;
  /** Closes every peer and listener of this transport (listeners gracefully). */
  close(): Promise<void>;
}

/** Limits every backend accepts in its options (each defaults to limits.ts). */
export interface TransportLimitOptions {
  /** Largest payload this side sends or accepts; larger incoming frames are refused with a coded error. */
  readonly payloadBytesMax?: number;
  /** Requests in flight per connection. */
  readonly inflightPerConnectionMax?: number;
  /** Request payload bytes in flight per connection. */
  readonly inflightBytesPerConnectionMax?: number;
  /** Connections per peer in the pool. */
  readonly connectionsPerPeerMax?: number;
  /**
   * Handlers running per accepted connection before the server stops reading from it. It stops
   * between frames: a request whose header was taken has its payload read to the end first.
   */
  readonly serverInflightPerConnectionMax?: number;
}

/** Factory shape every backend follows: `tcpTransport(options)(components)`. */
export type TransportFactory<Components> = (components: Components) => Transport;
