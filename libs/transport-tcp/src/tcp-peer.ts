import type { TwError } from '@tw/errors';
import { HEADER_BYTES_MAX, transportErrors, WAITING_PER_PEER_MAX, type OutgoingRequest, type Peer, type RequestOptions, type Response } from '@tw/transport';
import { ClientConnection } from './client-connection.js';
import { chunksBytes, payloadChunks } from './frame.js';

export interface PeerLimits {
  readonly payloadBytesMax: number;
  readonly inflightPerConnectionMax: number;
  readonly inflightBytesPerConnectionMax: number;
  readonly connectionsPerPeerMax: number;
}

interface Waiter {
  readonly bytes: number;
  /** Sends the call on `conn` at once, so the slot is taken before the next waiter looks. */
  readonly start: (conn: ClientConnection) => void;
  readonly reject: (err: TwError) => void;
  detach: (() => void) | undefined;
}

/**
 * A pool of up to `connectionsPerPeerMax` connections to one address. A call goes to the open
 * connection with the fewest calls in flight that admits it; when all are busy and the pool is not
 * full, another connection is opened in the background; when none admits, the call waits (FIFO,
 * bounded, abortable).
 */
export class TcpPeer implements Peer {
  private readonly conns = new Set<ClientConnection>();
  private connecting: Promise<ClientConnection> | undefined;
  private readonly waiters: Waiter[] = [];
  private isClosed = false;
  private pendingCount = 0;

  constructor(
    readonly address: string,
    private readonly host: string,
    private readonly port: number,
    private readonly limits: PeerLimits,
    private readonly onClosed: (peer: TcpPeer) => void,
  ) {}

  get pendingRequests(): number {
    return this.pendingCount;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Opens the first connection. */
  async start(signal: AbortSignal | undefined): Promise<void> {
    const conn = this.openConnection();
    if (signal === undefined) {
      await conn;
      return;
    }
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        reject(transportErrors.create('TW_TRANSPORT_ABORTED', `dial ${this.address} aborted`, { cause: signal.reason }));
        void this.close();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      conn.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err as Error);
        },
      );
    });
  }

  async request(request: OutgoingRequest, options: RequestOptions = {}): Promise<Response> {
    const { signal, into, onPayloadBytes } = options;
    if (this.isClosed) throw transportErrors.create('TW_TRANSPORT_CLOSED', `peer ${this.address} is closed`);
    if (signal?.aborted) throw transportErrors.create('TW_TRANSPORT_ABORTED', 'request aborted before it was sent', { cause: signal.reason });
    if (request.header.length > HEADER_BYTES_MAX) {
      throw transportErrors.create('TW_TRANSPORT_HEADER_TOO_LARGE', `request header of ${request.header.length} bytes is over ${HEADER_BYTES_MAX}`);
    }
    const chunks = payloadChunks(request.payload);
    const bytes = chunksBytes(chunks);
    if (bytes > this.limits.payloadBytesMax) {
      throw transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `request payload of ${bytes} bytes is over the limit of ${this.limits.payloadBytesMax}`, {
        details: { payloadBytes: bytes, payloadBytesMax: this.limits.payloadBytesMax },
      });
    }
    this.pendingCount++;
    try {
      const conn = this.pick(bytes);
      if (conn !== undefined) return await conn.call(request.header, chunks, into, signal, onPayloadBytes);
      return await this.waitForSlot(bytes, signal, (c) => c.call(request.header, chunks, into, signal, onPayloadBytes));
    } finally {
      this.pendingCount--;
    }
  }

  async close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      const err = transportErrors.create('TW_TRANSPORT_CLOSED', `peer ${this.address} was closed`);
      for (const w of this.waiters.splice(0)) {
        w.detach?.();
        w.reject(err);
      }
      for (const c of this.conns) c.destroy(err);
      this.onClosed(this);
    }
    const pendingConnect = this.connecting?.then((c) => c.closed, () => undefined);
    await Promise.all([...[...this.conns].map((c) => c.closed), pendingConnect]);
  }

  private pick(bytes: number): ClientConnection | undefined {
    let best: ClientConnection | undefined;
    for (const c of this.conns) {
      if (c.admits(bytes) && (best === undefined || c.inflight < best.inflight)) best = c;
    }
    if ((best === undefined || best.inflight > 0) && this.conns.size < this.limits.connectionsPerPeerMax && this.connecting === undefined) {
      this.openConnection().catch(() => undefined);
    }
    // Waiters go first: a newcomer does not overtake calls queued before it.
    return this.waiters.length > 0 ? undefined : best;
  }

  private waitForSlot(bytes: number, signal: AbortSignal | undefined, send: (conn: ClientConnection) => Promise<Response>): Promise<Response> {
    if (this.waiters.length >= WAITING_PER_PEER_MAX) {
      return Promise.reject(transportErrors.create('TW_TRANSPORT_QUEUE_FULL', `${this.waiters.length} requests already wait for ${this.address}`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { bytes, start: (c) => send(c).then(resolve, reject), reject, detach: undefined };
      if (signal !== undefined) {
        const onAbort = (): void => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(transportErrors.create('TW_TRANSPORT_ABORTED', 'request aborted while waiting for a connection slot', { cause: signal.reason }));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.waiters.push(waiter);
      this.drain();
    });
  }

  /** Hands free slots to waiters in order. */
  private drain(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      let best: ClientConnection | undefined;
      for (const c of this.conns) {
        if (c.admits(w.bytes) && (best === undefined || c.inflight < best.inflight)) best = c;
      }
      if (best === undefined) break;
      this.waiters.shift();
      w.detach?.();
      w.start(best);
    }
    if (this.waiters.length > 0 && this.connecting === undefined && !this.isClosed) {
      const anyOpen = [...this.conns].some((c) => c.open);
      if (!anyOpen || this.conns.size < this.limits.connectionsPerPeerMax) {
        this.openConnection().catch(() => undefined);
      }
    }
  }

  private openConnection(): Promise<ClientConnection> {
    if (this.connecting !== undefined) return this.connecting;
    const conn = new ClientConnection({
      host: this.host,
      port: this.port,
      payloadBytesMax: this.limits.payloadBytesMax,
      inflightMax: this.limits.inflightPerConnectionMax,
      inflightBytesMax: this.limits.inflightBytesPerConnectionMax,
      onSlotFree: (c) => {
        if (!c.open) this.conns.delete(c);
        if (!this.isClosed) this.drain();
      },
    });
    const p = conn.connected.then(
      () => {
        this.connecting = undefined;
        if (this.isClosed) {
          conn.destroy(transportErrors.create('TW_TRANSPORT_CLOSED', `peer ${this.address} was closed`));
          throw transportErrors.create('TW_TRANSPORT_CLOSED', `peer ${this.address} was closed`);
        }
        this.conns.add(conn);
        this.drain();
        return conn;
      },
      (err: unknown) => {
        this.connecting = undefined;
        // Whoever started the connect, calls waiting with no open connection left fail now.
        if (![...this.conns].some((c) => c.open)) {
          for (const w of this.waiters.splice(0)) {
            w.detach?.();
            w.reject(err as TwError);
          }
        }
        throw err;
      },
    );
    this.connecting = p;
    return p;
  }
}
