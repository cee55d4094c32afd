import { connect, type Socket } from 'node:net';
import type { TwError } from '@tw/errors';
import { CONNECTION_REQUEST_ID, FrameKind, transportErrors, type Payload, type Response } from '@tw/transport';
import { chunksBytes, decodeRemoteError, encodeFrameHead, payloadChunks, type FramePrefix } from './frame.js';
import { FrameReader, type FrameSink, type PayloadPlan } from './frame-reader.js';

export interface ClientConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly payloadBytesMax: number;
  readonly inflightMax: number;
  readonly inflightBytesMax: number;
  /** A slot was freed, or the connection closed: the pool may hand out work again. */
  readonly onSlotFree: (conn: ClientConnection) => void;
}

interface PendingCall {
  readonly id: number;
  readonly bytes: number;
  readonly into: Uint8Array | undefined;
  readonly onPayloadBytes: ((receivedBytes: number) => void) | undefined;
  readonly resolve: (r: Response) => void;
  readonly reject: (e: TwError) => void;
  /** The plan whose payload is being received, while it is. */
  plan: PayloadPlan | undefined;
  detach: (() => void) | undefined;
}

type HandleWithUserBuffer = { useUserBuffer?: (buf: Uint8Array) => void };

/**
 * One client socket: many requests in flight, responses matched by id in any order. Reads go
 * through onread so large payloads land directly in their destination.
 */
export class ClientConnection implements FrameSink {
  readonly socket: Socket;
  readonly connected: Promise<void>;
  /** Resolves once the socket is fully closed. */
  readonly closed: Promise<void>;
  private readonly pending = new Map<number, PendingCall>();
  private readonly reader: FrameReader;
  private nextId = 1;
  private inflightBytes = 0;
  private closeError: TwError | undefined;
  private isOpen = false;

  constructor(private readonly options: ClientConnectionOptions) {
    this.reader = new FrameReader(this, true);
    const reader = this.reader;
    this.socket = connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      onread: {
        buffer: () => reader.nextReadBuffer(),
        callback: (n: number) => {
          reader.onRead(n);
          return true;
        },
      },
    });
    const handle = (this.socket as unknown as { _handle?: HandleWithUserBuffer })._handle;
    if (typeof handle?.useUserBuffer === 'function') {
      reader.redirect = (buf) => {
        const h = (this.socket as unknown as { _handle?: HandleWithUserBuffer })._handle;
        if (typeof h?.useUserBuffer !== 'function') return false;
        h.useUserBuffer(buf);
        return true;
      };
    }
    this.connected = new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(transportErrors.create('TW_TRANSPORT_CONNECT_FAILED', `connect to ${options.host}:${options.port} failed: ${err.message}`, { cause: err }));
      };
      this.socket.once('error', onError);
      this.socket.once('connect', () => {
        this.socket.off('error', onError);
        this.isOpen = true;
        resolve();
      });
    });
    this.connected.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.socket.on('error', (err) => {
        this.closeError ??= transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', `connection to ${options.host}:${options.port} failed: ${err.message}`, { cause: err });
      });
      this.socket.once('close', () => {
        this.isOpen = false;
        this.failAll(this.closeError ?? transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', `connection to ${options.host}:${options.port} closed`));
        this.options.onSlotFree(this);
        resolve();
      });
    });
  }

  get open(): boolean {
    return this.isOpen && !this.socket.destroyed;
  }

  get inflight(): number {
    return this.pending.size;
  }

  /** Whether a request of `bytes` payload fits now; an idle connection takes any size. */
  admits(bytes: number): boolean {
    if (!this.open) return false;
    if (this.pending.size === 0) return true;
    return this.pending.size < this.options.inflightMax && this.inflightBytes + bytes <= this.options.inflightBytesMax;
  }

  /** Sends one request; the caller checked `admits`. */
  call(
    header: Uint8Array,
    payload: Payload | undefined,
    into: Uint8Array | undefined,
    signal: AbortSignal | undefined,
    onPayloadBytes?: (receivedBytes: number) => void,
  ): Promise<Response> {
    const chunks = payloadChunks(payload);
    const bytes = chunksBytes(chunks);
    let id = this.nextId;
    while (this.pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    return new Promise<Response>((resolve, reject) => {
      const call: PendingCall = { id, bytes, into, onPayloadBytes, resolve, reject, plan: undefined, detach: undefined };
      if (signal !== undefined) {
        const onAbort = (): void => this.abort(call, signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        call.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.pending.set(id, call);
      this.inflightBytes += bytes;
      const head = encodeFrameHead(FrameKind.REQUEST, id, header, bytes);
      const socket = this.socket;
      socket.cork();
      socket.write(head);
      for (const c of chunks) socket.write(c);
      socket.uncork();
    });
  }

  /** Destroys the socket; pending calls fail with `error`. */
  destroy(error: TwError): void {
    this.closeError ??= error;
    this.socket.destroy();
  }

  onFrame(prefix: FramePrefix, header: Buffer): PayloadPlan {
    if (prefix.kind === FrameKind.ERROR && prefix.id === CONNECTION_REQUEST_ID) {
      // The server found our stream broken and is closing: pending calls fail with its reason.
      const cause = decodeRemoteError(header);
      this.closeError ??= transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', `the server closed the connection: ${cause.message}`, { cause });
      return { mode: 'discard', complete: () => undefined };
    }
    const call = this.pending.get(prefix.id);
    if (call === undefined) return { mode: 'discard', complete: () => undefined }; // aborted: late reply dropped
    if (prefix.kind === FrameKind.ERROR) {
      this.settle(call);
      call.reject(decodeRemoteError(header));
      return { mode: 'discard', complete: () => undefined };
    }
    if (prefix.kind !== FrameKind.RESPONSE) {
      this.protocolError(transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', `server sent a frame of kind ${prefix.kind}`));
      return { mode: 'discard', complete: () => undefined };
    }
    if (prefix.payloadBytes > this.options.payloadBytesMax) {
      this.settle(call);
      call.reject(transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `response payload of ${prefix.payloadBytes} bytes is over the limit of ${this.options.payloadBytesMax}`, { details: { payloadBytes: prefix.payloadBytes, payloadBytesMax: this.options.payloadBytesMax } }));
      return { mode: 'discard', complete: () => undefined };
    }
    if (call.into !== undefined && call.into.length < prefix.payloadBytes) {
      this.settle(call);
      call.reject(transportErrors.create('TW_TRANSPORT_DESTINATION_TOO_SMALL', `response payload of ${prefix.payloadBytes} bytes does not fit the destination of ${call.into.length}`, { details: { payloadBytes: prefix.payloadBytes, destinationBytes: call.into.length } }));
      return { mode: 'discard', complete: () => undefined };
    }
    const progress = call.into === undefined ? undefined : call.onPayloadBytes;
    const plan: PayloadPlan = {
      mode: call.into === undefined ? 'own' : 'into',
      ...(call.into === undefined ? {} : { into: call.into }),
      ...(progress === undefined
        ? {}
        : {
            progress: (received: number) => {
              try {
                progress(received);
              } catch (err) {
                // The caller's hook failed: the call fails with its error, the rest is discarded.
                if (this.pending.get(call.id) !== call) return;
                this.reader.abandon(plan);
                this.settle(call);
                if (this.open) this.socket.write(encodeFrameHead(FrameKind.CANCEL, call.id, new Uint8Array(0), 0));
                call.reject(err as TwError);
              }
            },
          }),
      complete: (payload) => {
        this.settle(call);
        call.resolve({ header, payload: payload.length === 0 && call.into !== undefined ? call.into.subarray(0, 0) : payload });
      },
    };
    call.plan = plan;
    return plan;
  }

  onMalformed(error: TwError): void {
    this.protocolError(error);
  }

  private protocolError(error: TwError): void {
    this.destroy(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', `connection closed: ${error.message}`, { cause: error }));
  }

  private abort(call: PendingCall, reason: unknown): void {
    if (this.pending.get(call.id) !== call) return;
    if (call.plan !== undefined) this.reader.abandon(call.plan);
    this.settle(call);
    if (this.open) this.socket.write(encodeFrameHead(FrameKind.CANCEL, call.id, new Uint8Array(0), 0));
    call.reject(transportErrors.create('TW_TRANSPORT_ABORTED', 'request aborted', { cause: reason }));
  }

  /** Removes the call from the books and frees its slot. */
  private settle(call: PendingCall): void {
    this.pending.delete(call.id);
    this.inflightBytes -= call.bytes;
    call.detach?.();
    call.plan = undefined;
    this.options.onSlotFree(this);
  }

  private failAll(error: TwError): void {
    for (const call of [...this.pending.values()]) {
      if (call.plan !== undefined) this.reader.abandon(call.plan);
      this.pending.delete(call.id);
      this.inflightBytes -= call.bytes;
      call.detach?.();
      call.reject(error);
    }
  }
}
