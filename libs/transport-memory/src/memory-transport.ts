import { TwError } from '@tw/errors';
import {
  HEADER_BYTES_MAX,
  INFLIGHT_BYTES_PER_CONNECTION_MAX_DEFAULT,
  INFLIGHT_PER_CONNECTION_MAX_DEFAULT,
  PAYLOAD_BYTES_MAX_CAP,
  PAYLOAD_BYTES_MAX_DEFAULT,
  SERVER_INFLIGHT_PER_CONNECTION_MAX_DEFAULT,
  transportErrors,
  WAITING_PER_PEER_MAX,
  type DialOptions,
  type ListenOptions,
  type Listener,
  type MemoryRegion,
  type OutgoingRequest,
  type Payload,
  type PayloadDestination,
  type PayloadSink,
  type Peer,
  type RequestHandler,
  type RequestOptions,
  type Response,
  type Transport,
  type TransportFactory,
  type TransportLimitOptions,
  type TransportStats,
} from '@tw/transport';
import { Channel, type MemoryNetwork } from './memory-network.js';

export interface MemoryTransportOptions extends TransportLimitOptions {
  /** This transport's node name in the network (partitions name nodes). Default: a fresh one. */
  readonly node?: string;
}

export interface MemoryTransportComponents {
  /** The shared in-process network (see memoryNetwork()). */
  readonly network: MemoryNetwork;
}

interface WireError {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
}

type ToServer =
  | { t: 'req'; id: number; header: Buffer; payload: Buffer }
  | { t: 'cancel'; id: number }
  | { t: 'raw'; bytes: Buffer };
type ToClient = { t: 'res'; id: number; header: Buffer; payload: Buffer } | { t: 'err'; id: number; error: WireError };

function toWire(err: unknown): WireError {
  if (err instanceof TwError) return { code: err.code, message: err.message, retryable: err.retryable, details: err.details === undefined ? undefined : { ...err.details } };
  return { code: 'TW_TRANSPORT_REMOTE_ERROR', message: err instanceof Error ? err.message : String(err), retryable: false, details: undefined };
}

function fromWire(e: WireError): TwError {
  return new TwError(e.code, e.message, { retryable: e.retryable, ...(e.details === undefined ? {} : { details: e.details }) });
}

/** Copies a payload into one fresh Buffer: what crossing a wire does. */
function copyPayload(payload: Payload | undefined): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  if (payload instanceof Uint8Array) return Buffer.from(payload);
  return Buffer.concat(payload.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.length))));
}

function payloadBytes(payload: Payload | undefined): number {
  if (payload === undefined) return 0;
  if (payload instanceof Uint8Array) return payload.length;
  let n = 0;
  for (const p of payload) n += p.length;
  return n;
}

/**
 * A connection: two channels, a client end and a server end. Data messages may be dropped or
 * delayed by the network; closes always arrive (as a reset would).
 */
class MemoryConnection {
  readonly toServer = new Channel();
  readonly toClient = new Channel();
  clientOpen = true;
  serverOpen = true;
  onServerMessage: (m: ToServer) => void = () => undefined;
  onServerClosed: () => void = () => undefined;
  onClientMessage: (m: ToClient) => void = () => undefined;
  onClientClosed: (error: WireError | undefined) => void = () => undefined;

  constructor(
    readonly network: MemoryNetwork,
    readonly clientNode: string,
    readonly serverNode: string,
  ) {}

  sendToServer(m: ToServer): void {
    if (!this.clientOpen) return;
    this.network.send(this.toServer, this.clientNode, this.serverNode, 'data', () => {
      if (this.serverOpen) this.onServerMessage(m);
    });
  }

  sendToClient(m: ToClient): void {
    if (!this.serverOpen) return;
    this.network.send(this.toClient, this.serverNode, this.clientNode, 'data', () => {
      if (this.clientOpen) this.onClientMessage(m);
    });
  }

  /** Client side closes: the server learns after the channel's delay. */
  closeFromClient(): void {
    if (!this.clientOpen) return;
    this.clientOpen = false;
    this.network.send(this.toServer, this.clientNode, this.serverNode, 'control', () => {
      if (!this.serverOpen) return;
      this.serverOpen = false;
      this.onServerClosed();
    });
  }

  /** Server side closes (optionally saying why): the client learns after the channel's delay. */
  closeFromServer(error?: WireError): void {
    if (!this.serverOpen) return;
    this.serverOpen = false;
    this.onServerClosed();
    this.network.send(this.toClient, this.serverNode, this.clientNode, 'control', () => {
      if (!this.clientOpen) return;
      this.clientOpen = false;
      this.onClientClosed(error);
    });
  }
}

interface Limits {
  readonly payloadBytesMax: number;
  readonly inflightMax: number;
  readonly inflightBytesMax: number;
  readonly serverInflightMax: number;
}

interface PendingCall {
  readonly bytes: number;
  readonly into: Uint8Array | undefined;
  readonly onPayloadBytes: ((receivedBytes: number) => void) | undefined;
  readonly resolve: (r: Response) => void;
  readonly reject: (e: TwError) => void;
  readonly detach: () => void;
}

interface Waiter {
  readonly bytes: number;
  readonly start: () => void;
  readonly reject: (e: TwError) => void;
  detach: () => void;
}

/** The client end: one connection per peer (in memory more would add nothing), bounded in flight. */
class MemoryPeer implements Peer {
  private readonly pending = new Map<number, PendingCall>();
  private readonly waiters: Waiter[] = [];
  private nextId = 1;
  private inflightBytes = 0;
  private state: 'open' | 'broken' | 'closed' = 'open';
  private brokenError: TwError | undefined;
  private readonly closedPromise: Promise<void>;
  private markClosed: () => void = () => undefined;

  constructor(
    readonly address: string,
    private readonly conn: MemoryConnection,
    private readonly limits: Limits,
    private readonly onGone: (p: MemoryPeer) => void,
  ) {
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    conn.onClientMessage = (m) => this.receive(m);
    conn.onClientClosed = (error) => {
      const cause = error === undefined ? undefined : fromWire(error);
      this.fail(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', `connection to ${address} closed`, cause === undefined ? {} : { cause }));
    };
  }

  get connectionCount(): number {
    return this.state === 'open' ? 1 : 0;
  }

  get pendingRequests(): number {
    return this.pending.size + this.waiters.length;
  }

  request(request: OutgoingRequest, options: RequestOptions = {}): Promise<Response> {
    const { signal, into, onPayloadBytes } = options;
    if (this.state === 'closed') return Promise.reject(transportErrors.create('TW_TRANSPORT_CLOSED', `peer ${this.address} is closed`));
    if (this.state === 'broken') return Promise.reject(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', `connection to ${this.address} is gone`, { cause: this.brokenError }));
    if (signal?.aborted) return Promise.reject(transportErrors.create('TW_TRANSPORT_ABORTED', 'request aborted before it was sent', { cause: signal.reason }));
    if (request.header.length > HEADER_BYTES_MAX) {
      return Promise.reject(transportErrors.create('TW_TRANSPORT_HEADER_TOO_LARGE', `request header of ${request.header.length} bytes is over ${HEADER_BYTES_MAX}`));
    }
    const bytes = payloadBytes(request.payload);
    if (bytes > this.limits.payloadBytesMax) {
      return Promise.reject(
        transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `request payload of ${bytes} bytes is over the limit of ${this.limits.payloadBytesMax}`, {
          details: { payloadBytes: bytes, payloadBytesMax: this.limits.payloadBytesMax },
        }),
      );
    }
    return new Promise<Response>((resolve, reject) => {
      const send = (): void => this.send(request, bytes, into, signal, resolve, reject, onPayloadBytes);
      if (this.waiters.length === 0 && this.admits(bytes)) {
        send();
        return;
      }
      if (this.waiters.length >= WAITING_PER_PEER_MAX) {
        reject(transportErrors.create('TW_TRANSPORT_QUEUE_FULL', `${this.waiters.length} requests already wait for ${this.address}`));
        return;
      }
      const waiter: Waiter = { bytes, start: send, reject, detach: () => undefined };
      if (signal !== undefined) {
        const onAbort = (): void => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(transportErrors.create('TW_TRANSPORT_ABORTED', 'request aborted while waiting for a slot', { cause: signal.reason }));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    if (this.state !== 'closed') {
      this.fail(transportErrors.create('TW_TRANSPORT_CLOSED', `peer ${this.address} was closed`));
      this.state = 'closed';
    }
    await this.closedPromise;
  }

  private admits(bytes: number): boolean {
    if (this.pending.size === 0) return true;
    return this.pending.size < this.limits.inflightMax && this.inflightBytes + bytes <= this.limits.inflightBytesMax;
  }

  private send(
    request: OutgoingRequest,
    bytes: number,
    into: Uint8Array | undefined,
    signal: AbortSignal | undefined,
    resolve: (r: Response) => void,
    reject: (e: TwError) => void,
    onPayloadBytes?: (receivedBytes: number) => void,
  ): void {
    let id = this.nextId;
    while (this.pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    let detach = (): void => undefined;
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (!this.settle(id)) return;
        this.conn.sendToServer({ t: 'cancel', id });
        reject(transportErrors.create('TW_TRANSPORT_ABORTED', 'request aborted', { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      detach = () => signal.removeEventListener('abort', onAbort);
    }
    this.pending.set(id, { bytes, into, onPayloadBytes, resolve, reject, detach });
    this.inflightBytes += bytes;
    // Crossing the wire copies: the caller may reuse its buffers once the call settles.
    this.conn.sendToServer({ t: 'req', id, header: Buffer.from(request.header), payload: copyPayload(request.payload) });
  }

  private receive(m: ToClient): void {
    const call = this.pending.get(m.id);
    if (call === undefined) return; // aborted: the late reply is dropped
    this.settle(m.id);
    if (m.t === 'err') {
      call.reject(fromWire(m.error));
      return;
    }
    if (m.payload.length > this.limits.payloadBytesMax) {
      call.reject(transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `response payload of ${m.payload.length} bytes is over the limit of ${this.limits.payloadBytesMax}`));
      return;
    }
    if (call.into !== undefined) {
      if (call.into.length < m.payload.length) {
        call.reject(
          transportErrors.create('TW_TRANSPORT_DESTINATION_TOO_SMALL', `response payload of ${m.payload.length} bytes does not fit the destination of ${call.into.length}`, {
            details: { payloadBytes: m.payload.length, destinationBytes: call.into.length },
          }),
        );
        return;
      }
      call.into.set(m.payload);
      if (m.payload.length > 0 && call.onPayloadBytes !== undefined) {
        // Messages arrive whole: one progress report with every byte.
        try {
          call.onPayloadBytes(m.payload.length);
        } catch (err) {
          call.reject(err as TwError);
          return;
        }
      }
      call.resolve({ header: m.header, payload: call.into.subarray(0, m.payload.length) });
      return;
    }
    call.resolve({ header: m.header, payload: m.payload });
  }

  /** Takes a call off the books and lets waiters in; false when it was already settled. */
  private settle(id: number): boolean {
    const call = this.pending.get(id);
    if (call === undefined) return false;
    this.pending.delete(id);
    this.inflightBytes -= call.bytes;
    call.detach();
    while (this.waiters.length > 0 && this.admits(this.waiters[0]!.bytes) && this.state === 'open') {
      const w = this.waiters.shift()!;
      w.detach();
      w.start();
    }
    return true;
  }

  private fail(error: TwError): void {
    if (this.state !== 'open') return;
    this.state = 'broken';
    this.brokenError = error;
    this.conn.closeFromClient();
    this.conn.clientOpen = false;
    for (const [id, call] of [...this.pending]) {
      this.pending.delete(id);
      call.detach();
      call.reject(error);
    }
    this.inflightBytes = 0;
    for (const w of this.waiters.splice(0)) {
      w.detach();
      w.reject(error);
    }
    this.onGone(this);
    this.markClosed();
  }
}

/** A request waiting for a handler slot; `abandon` tells its PayloadSink if it never runs. */
type Backlogged = Extract<ToServer, { t: 'req' }> & { abandon?: (reason: Error) => void };

/** The server end of one connection. */
class ServerSide {
  readonly running = new Map<number, AbortController>();
  private readonly backlog: Backlogged[] = [];
  private gone = false;
  private idle: (() => void) | undefined;
  private receiving = 0;
  draining = false;

  constructor(
    readonly conn: MemoryConnection,
    private readonly handler: RequestHandler,
    private readonly limits: Limits,
    private readonly onError: (e: Error) => void,
    private readonly onGone: (s: ServerSide) => void,
    private readonly payloadDestination: PayloadDestination | undefined,
  ) {
    conn.onServerMessage = (m) => this.receive(m);
    conn.onServerClosed = () => {
      this.gone = true;
      const lost = transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'client connection closed before the request ran');
      for (const b of this.backlog) b.abandon?.(lost);
      for (const c of this.running.values()) c.abort(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'client connection closed'));
      this.running.clear();
      this.backlog.length = 0;
      this.idle?.();
      this.onGone(this);
    };
  }

  /** Graceful: finish running handlers (and the backlog), then close. */
  async drain(): Promise<void> {
    this.draining = true;
    if (this.running.size > 0 || this.backlog.length > 0 || this.receiving > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.conn.closeFromServer();
  }

  private receive(m: ToServer): void {
    if (m.t === 'cancel') {
      this.running.get(m.id)?.abort(transportErrors.create('TW_TRANSPORT_ABORTED', 'the client aborted the request'));
      return;
    }
    if (m.t === 'raw') {
      // A memory connection carries messages, not bytes: any raw bytes break the protocol.
      const err = transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', `malformed frame: ${m.bytes.length} raw bytes on a message connection`);
      this.onError(err);
      this.conn.closeFromServer(toWire(err));
      return;
    }
    if (m.payload.length > this.limits.payloadBytesMax) {
      const err = transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `request payload of ${m.payload.length} bytes is over the server's limit of ${this.limits.payloadBytesMax}`, {
        details: { payloadBytes: m.payload.length, payloadBytesMax: this.limits.payloadBytesMax },
      });
      this.onError(err);
      this.conn.sendToClient({ t: 'err', id: m.id, error: toWire(err) });
      return;
    }
    if (this.draining) {
      this.conn.sendToClient({ t: 'err', id: m.id, error: toWire(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'the server is closing this connection; request not executed')) });
      return;
    }
    // The hook may start a graceful close; this request, already in, must still be served.
    this.receiving++;
    let dest: Uint8Array | PayloadSink | undefined;
    try {
      dest = m.payload.length > 0 ? this.payloadDestination?.(m.header, m.payload.length) : undefined;
    } catch (err) {
      // The server's hook failed: that request fails with the hook's error, the connection lives.
      this.receiving--;
      this.conn.sendToClient({ t: 'err', id: m.id, error: toWire(err) });
      if (this.receiving === 0 && this.running.size === 0 && this.backlog.length === 0) this.idle?.();
      return;
    }
    this.receiving--;
    const sink = dest === undefined || dest instanceof Uint8Array ? undefined : dest;
    const into = sink === undefined ? (dest as Uint8Array | undefined) : sink.buffer;
    let entry: Backlogged = m;
    if (sink !== undefined) {
      // Messages arrive whole: one progress report with every byte, then the handler (or, if the
      // connection died meanwhile, or the sink failed, onAbandon instead).
      const abandon = (reason: Error): void => {
        try {
          sink.onAbandon?.(reason);
        } catch (err) {
          this.onError(err as Error);
        }
      };
      let failure: unknown;
      if (sink.buffer.length < m.payload.length) {
        failure = transportErrors.create('TW_TRANSPORT_DESTINATION_TOO_SMALL', `payloadDestination gave ${sink.buffer.length} bytes for a ${m.payload.length}-byte payload`, {
          details: { payloadBytes: m.payload.length, destinationBytes: sink.buffer.length },
        });
      } else {
        into!.set(m.payload);
        try {
          sink.onBytes?.(m.payload.length);
        } catch (err) {
          failure = err;
          this.onError(err as Error);
        }
      }
      if (failure !== undefined) {
        abandon(failure instanceof Error ? failure : new Error(String(failure)));
        this.conn.sendToClient({ t: 'err', id: m.id, error: toWire(failure) });
        if (this.running.size === 0 && this.backlog.length === 0) this.idle?.();
        return;
      }
      if (this.gone) {
        abandon(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'client connection closed while a request payload was arriving'));
        return;
      }
      entry = { ...m, payload: Buffer.from(into!.buffer, into!.byteOffset, m.payload.length), abandon };
    } else if (into !== undefined && into.length >= m.payload.length) {
      into.set(m.payload);
      entry = { ...m, payload: Buffer.from(into.buffer, into.byteOffset, m.payload.length) };
    }
    if (this.running.size >= this.limits.serverInflightMax) this.backlog.push(entry);
    else this.run(entry);
  }

  private run(m: Backlogged): void {
    const controller = new AbortController();
    this.running.set(m.id, controller);
    void (async () => {
      try {
        const reply = await this.handler({ header: m.header, payload: m.payload }, { signal: controller.signal, remoteAddress: this.conn.clientNode });
        const bytes = payloadBytes(reply.payload);
        const live = this.running.get(m.id) === controller && !controller.signal.aborted;
        if (live && reply.header.length > HEADER_BYTES_MAX) {
          throw transportErrors.create('TW_TRANSPORT_HEADER_TOO_LARGE', `reply header of ${reply.header.length} bytes is over ${HEADER_BYTES_MAX}`);
        }
        if (live && bytes > this.limits.payloadBytesMax) {
          reply.onSent?.();
          throw transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `reply payload of ${bytes} bytes is over the limit of ${this.limits.payloadBytesMax}`);
        }
        if (live) this.conn.sendToClient({ t: 'res', id: m.id, header: Buffer.from(reply.header), payload: copyPayload(reply.payload) });
        reply.onSent?.();
      } catch (err) {
        if (this.running.get(m.id) === controller && !controller.signal.aborted) this.conn.sendToClient({ t: 'err', id: m.id, error: toWire(err) });
      } finally {
        if (this.running.get(m.id) === controller) this.running.delete(m.id);
        while (this.backlog.length > 0 && this.running.size < this.limits.serverInflightMax) this.run(this.backlog.shift()!);
        if (this.running.size === 0 && this.backlog.length === 0) this.idle?.();
      }
    })();
  }
}

class MemoryListener implements Listener {
  readonly sides = new Set<ServerSide>();
  private closing: Promise<void> | undefined;
  private readonly allGone: { promise: Promise<void>; resolve: () => void };

  constructor(
    readonly address: string,
    private readonly transport: MemoryTransport,
    readonly node: string,
    private readonly handler: RequestHandler,
    private readonly onError: (e: Error) => void,
    private readonly payloadDestination: PayloadDestination | undefined,
  ) {
    let resolve!: () => void;
    this.allGone = { promise: new Promise<void>((r) => (resolve = r)), resolve };
  }

  accept(conn: MemoryConnection): void {
    const side = new ServerSide(conn, this.handler, this.transport.limits, this.onError, (s) => {
      this.sides.delete(s);
      if (this.closing !== undefined && this.sides.size === 0) this.allGone.resolve();
    }, this.payloadDestination);
    this.sides.add(side);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown(async (s) => s.drain());
    return this.closing;
  }

  abort(): Promise<void> {
    const done = this.shutdown(async (s) => {
      for (const c of s.running.values()) c.abort(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'listener aborted'));
      s.conn.closeFromServer();
    });
    this.closing ??= done;
    return done;
  }

  private async shutdown(each: (s: ServerSide) => Promise<void>): Promise<void> {
    const network = this.transport.network;
    if (network.listeners.get(this.address)?.accept === this.acceptRef) network.listeners.delete(this.address);
    await Promise.all([...this.sides].map(each));
    if (this.sides.size > 0) await this.allGone.promise;
    this.transport.listenerGone(this);
  }

  readonly acceptRef = (conn: unknown): void => this.accept(conn as MemoryConnection);
}

/**
 * The in-process backend: same contract as TCP, messages instead of bytes, every delay and loss
 * drawn from the network's seed. Payloads are copied when they cross (as a wire would), so
 * ownership rules match the real backends.
 */
export class MemoryTransport implements Transport {
  readonly name = 'memory';
  readonly node: string;
  private readonly peers = new Set<MemoryPeer>();
  private readonly listeners = new Set<MemoryListener>();
  private readonly raws = new Set<MemoryConnection>();
  private closed = false;

  constructor(
    readonly network: MemoryNetwork,
    readonly limits: Limits,
    node: string | undefined,
  ) {
    this.node = node ?? network.newNodeName();
  }

  async listen(address: string, handler: RequestHandler, options: ListenOptions = {}): Promise<Listener> {
    this.ensureOpen();
    options.signal?.throwIfAborted();
    const bound = this.network.resolveListenAddress(address);
    if (this.network.listeners.has(bound)) throw transportErrors.create('TW_TRANSPORT_LISTEN_FAILED', `address ${bound} is in use`);
    const listener = new MemoryListener(bound, this, this.node, handler, options.onError ?? (() => undefined), options.payloadDestination);
    this.network.listeners.set(bound, { node: this.node, accept: listener.acceptRef });
    this.listeners.add(listener);
    options.signal?.addEventListener('abort', () => void listener.close(), { once: true });
    return listener;
  }

  async dial(address: string, options: DialOptions = {}): Promise<Peer> {
    const conn = await this.connect(address, options.signal);
    const peer = new MemoryPeer(address, conn, this.limits, (p) => this.peers.delete(p));
    this.peers.add(peer);
    return peer;
  }

  /** Test hook: a connection that writes raw bytes, as garbage from a broken client would. */
  async rawConnect(address: string): Promise<{ write(bytes: Uint8Array): void; closed: Promise<{ errorCode: string | undefined }>; destroy(): void }> {
    const conn = await this.connect(address, undefined);
    this.raws.add(conn);
    const closed = new Promise<{ errorCode: string | undefined }>((resolve) => {
      conn.onClientClosed = (error) => {
        this.raws.delete(conn);
        resolve({ errorCode: error?.code });
      };
    });
    return {
      write: (bytes) => conn.sendToServer({ t: 'raw', bytes: Buffer.from(bytes) }),
      closed,
      destroy: () => {
        this.raws.delete(conn);
        conn.closeFromClient();
      },
    };
  }

  registerMemory(buffer: Uint8Array): MemoryRegion {
    return { buffer, remoteKey: new Uint8Array(0), deregister: () => undefined };
  }

  stats(): TransportStats {
    let connections = this.raws.size;
    let pendingRequests = 0;
    for (const p of this.peers) {
      connections += p.connectionCount;
      pendingRequests += p.pendingRequests;
    }
    for (const l of this.listeners) connections += l.sides.size;
    return { listeners: this.listeners.size, connections, pendingRequests };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.raws) r.closeFromClient();
    this.raws.clear();
    await Promise.all([...[...this.peers].map((p) => p.close()), ...[...this.listeners].map((l) => l.close())]);
  }

  listenerGone(l: MemoryListener): void {
    this.listeners.delete(l);
  }

  private async connect(address: string, signal: AbortSignal | undefined): Promise<MemoryConnection> {
    this.ensureOpen();
    if (signal?.aborted) throw transportErrors.create('TW_TRANSPORT_ABORTED', `dial ${address} aborted`, { cause: signal.reason });
    // A connect costs a turn, as a real one does.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw transportErrors.create('TW_TRANSPORT_ABORTED', `dial ${address} aborted`, { cause: signal.reason });
    const target = this.network.listeners.get(address);
    if (target === undefined) throw transportErrors.create('TW_TRANSPORT_CONNECT_FAILED', `nothing listens on ${address}`);
    if (this.network.isPartitioned(this.node, target.node)) {
      throw transportErrors.create('TW_TRANSPORT_CONNECT_FAILED', `${address} is unreachable from ${this.node} (partitioned)`);
    }
    const conn = new MemoryConnection(this.network, this.node, target.node);
    target.accept(conn);
    return conn;
  }

  private ensureOpen(): void {
    if (this.closed) throw transportErrors.create('TW_TRANSPORT_CLOSED', 'the transport is closed');
  }
}

function bounded(name: string, value: number | undefined, fallback: number, cap: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > cap) throw transportErrors.create('TW_TRANSPORT_BAD_OPTION', `option ${name} must be an integer in [1, ${cap}], got ${v}`);
  return v;
}

/** `memoryTransport(options)({ network })`: one node on the shared in-memory network. */
export function memoryTransport(options: MemoryTransportOptions = {}): TransportFactory<MemoryTransportComponents> {
  const limits: Limits = {
    payloadBytesMax: bounded('payloadBytesMax', options.payloadBytesMax, PAYLOAD_BYTES_MAX_DEFAULT, PAYLOAD_BYTES_MAX_CAP),
    inflightMax: bounded('inflightPerConnectionMax', options.inflightPerConnectionMax, INFLIGHT_PER_CONNECTION_MAX_DEFAULT, 65_536),
    inflightBytesMax: bounded('inflightBytesPerConnectionMax', options.inflightBytesPerConnectionMax, INFLIGHT_BYTES_PER_CONNECTION_MAX_DEFAULT, 2 ** 32),
    serverInflightMax: bounded('serverInflightPerConnectionMax', options.serverInflightPerConnectionMax, SERVER_INFLIGHT_PER_CONNECTION_MAX_DEFAULT, 65_536),
  };
  return (components) => new MemoryTransport(components.network, limits, options.node);
}
