import { Socket } from 'node:net';
import { TwError } from '@tw/errors';
import { CONNECTION_REQUEST_ID, FrameKind, HEADER_BYTES_MAX, transportErrors, type PayloadDestination, type PayloadSink, type RequestHandler } from '@tw/transport';
import { chunksBytes, encodeFrameHead, encodeRemoteError, payloadChunks, type FramePrefix } from './frame.js';
import { FrameReader, type FrameSink, type PayloadPlan } from './frame-reader.js';
import { PROTOCOL_ERROR_LINGER_MS, SERVER_PAYLOAD_BYTES_PER_CONNECTION_HIGH, SERVER_WRITE_BUFFER_HIGH_BYTES } from './limits.js';
import type { PayloadBudget } from './payload-budget.js';

export interface ServerConnectionOptions {
  readonly handler: RequestHandler;
  readonly payloadBytesMax: number;
  readonly inflightMax: number;
  readonly onError: (error: Error) => void;
  readonly payloadDestination: PayloadDestination | undefined;
  /** Request payload bytes held across the listener's connections (shared). */
  readonly payloadBudget: PayloadBudget;
}

const discard: PayloadPlan = { mode: 'discard', complete: () => undefined };

/**
 * One accepted socket: parses requests, runs handlers concurrently (bounded: beyond the bound, or
 * while replies are not flushing, it stops reading), writes replies as handlers finish.
 */
export class ServerConnection implements FrameSink {
  readonly closed: Promise<void>;
  private readonly reader: FrameReader;
  private readonly socket: Socket;
  private readonly running = new Map<number, AbortController>();
  /** Payload bytes of running requests, by request id (released when their handler ends). */
  private readonly heldById = new Map<number, number>();
  private heldBytes = 0;
  private readonly unsubscribeBudget: () => void;
  private draining = false;
  private failed = false;
  private pausedForWrites = false;
  private idleWaiter: (() => void) | undefined;
  private readonly remoteAddress: string;

  /** @param accepted a socket accepted with pauseOnConnect (nothing read from it yet). */
  constructor(
    accepted: Socket,
    private readonly options: ServerConnectionOptions,
  ) {
    const adopted = adoptForDirectReads(accepted, this);
    if (adopted !== undefined) {
      this.reader = adopted.reader;
      this.socket = adopted.socket;
    } else {
      // Fallback: 'data' events (node's 64 KiB reads), payloads copied out of them once.
      this.reader = new FrameReader(this, false);
      this.socket = accepted;
      accepted.on('data', (chunk: Buffer) => this.reader.consume(chunk, chunk.length, true));
    }
    this.unsubscribeBudget = options.payloadBudget.onBelowHigh(() => this.updateFlow());
    const socket = this.socket;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    socket.resume();
    socket.on('error', (err) => {
      if (!this.failed) this.options.onError(err);
    });
    socket.on('drain', () => {
      if (this.pausedForWrites) {
        this.pausedForWrites = false;
        this.updateFlow();
      }
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.reader.fail(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'client connection closed while a request payload was arriving'));
        this.abortAll(transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'client connection closed'));
        this.unsubscribeBudget();
        this.idleWaiter?.();
        resolve();
      }),
    );
  }

  onFrame(prefix: FramePrefix, header: Buffer): PayloadPlan {
    if (prefix.kind === FrameKind.CANCEL) {
      this.running.get(prefix.id)?.abort(transportErrors.create('TW_TRANSPORT_ABORTED', 'the client aborted the request'));
      return discard;
    }
    if (prefix.kind !== FrameKind.REQUEST) {
      this.protocolError(transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', `client sent a frame of kind ${prefix.kind}`));
      return discard;
    }
    if (this.running.has(prefix.id)) {
      this.protocolError(transportErrors.create('TW_TRANSPORT_MALFORMED_FRAME', `request id ${prefix.id} reused while in flight`));
      return discard;
    }
    if (prefix.payloadBytes > this.options.payloadBytesMax) {
      // Refuse the frame but keep the connection: drop the payload as it streams by.
      const id = prefix.id;
      const err = transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `request payload of ${prefix.payloadBytes} bytes is over the server's limit of ${this.options.payloadBytesMax}`, {
        details: { payloadBytes: prefix.payloadBytes, payloadBytesMax: this.options.payloadBytesMax },
      });
      this.options.onError(err);
      return { mode: 'discard', complete: () => this.writeError(id, err) };
    }
    if (this.draining) {
      // Closing: requests already in are finished, new ones are refused (the client may retry elsewhere).
      const id = prefix.id;
      const err = transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'the server is closing this connection; request not executed');
      return { mode: 'discard', complete: () => this.writeError(id, err) };
    }
    if (prefix.payloadBytes > 0 && !this.options.payloadBudget.admits(prefix.payloadBytes)) {
      const id = prefix.id;
      const err = transportErrors.create('TW_TRANSPORT_SERVER_BUSY', `the server holds ${this.options.payloadBudget.heldBytes} bytes of request payloads; a ${prefix.payloadBytes}-byte request was refused unexecuted`, {
        details: { payloadBytes: prefix.payloadBytes, heldBytes: this.options.payloadBudget.heldBytes },
      });
      return { mode: 'discard', complete: () => this.writeError(id, err) };
    }
    const controller = new AbortController();
    this.running.set(prefix.id, controller);
    this.hold(prefix.id, prefix.payloadBytes);
    // No updateFlow here: its payload comes next and is read to its end; `complete` pauses if due.
    const id = prefix.id;
    const complete = (payload: Buffer): void => {
      // The payload is in: a pause put off while it arrived (updateFlow) may happen now.
      this.updateFlow();
      void this.dispatch(id, header, payload, controller);
    };
    let dest: Uint8Array | PayloadSink | undefined;
    try {
      dest = prefix.payloadBytes > 0 ? this.options.payloadDestination?.(header, prefix.payloadBytes) : undefined;
    } catch (err) {
      // The server's hook failed: that request fails with the hook's error, the connection lives.
      this.settleWithoutHandler(id, controller);
      return { mode: 'discard', complete: () => this.writeError(id, err) };
    }
    if (dest === undefined) return { mode: 'own', complete };
    if (dest instanceof Uint8Array) return dest.length >= prefix.payloadBytes ? { mode: 'into', into: dest, complete } : { mode: 'own', complete };
    return this.sinkPlan(id, prefix.payloadBytes, dest, controller, complete);
  }

  /** A plan that reports progress to a PayloadSink and tells it when the payload is lost. */
  private sinkPlan(id: number, payloadBytes: number, sink: PayloadSink, controller: AbortController, complete: (payload: Buffer) => void): PayloadPlan {
    const abandon = (reason: Error): void => {
      try {
        sink.onAbandon?.(reason);
      } catch (err) {
        this.options.onError(err as Error);
      }
    };
    if (sink.buffer.length < payloadBytes) {
      const err = transportErrors.create('TW_TRANSPORT_DESTINATION_TOO_SMALL', `payloadDestination gave ${sink.buffer.length} bytes for a ${payloadBytes}-byte payload`, {
        details: { payloadBytes, destinationBytes: sink.buffer.length },
      });
      this.settleWithoutHandler(id, controller);
      abandon(err);
      return { mode: 'discard', complete: () => this.writeError(id, err) };
    }
    // A sink that throws stops getting progress; the payload is still received to its end (so
    // no read lands in its buffer after onAbandon), then the request fails with the error.
    let sinkError: unknown;
    const onBytes = sink.onBytes;
    return {
      mode: 'into',
      into: sink.buffer,
      progress:
        onBytes === undefined
          ? undefined
          : (received) => {
              if (sinkError !== undefined) return;
              try {
                onBytes(received);
              } catch (err) {
                sinkError = err;
                this.options.onError(err as Error);
              }
            },
      complete: (payload) => {
        if (sinkError === undefined) {
          complete(payload);
          return;
        }
        this.settleWithoutHandler(id, controller);
        abandon(sinkError instanceof Error ? sinkError : new Error(String(sinkError)));
        this.writeError(id, sinkError);
      },
      abandoned: abandon,
    };
  }

  /** A request that was counted as running ends without its handler. */
  private settleWithoutHandler(id: number, controller: AbortController): void {
    if (this.running.get(id) === controller) {
      this.running.delete(id);
      this.release(id);
    }
    this.updateFlow();
    if (this.running.size === 0) this.idleWaiter?.();
  }

  onMalformed(error: TwError): void {
    this.protocolError(error);
  }

  /**
   * Graceful close: requests already received (or being received) run to completion and reply;
   * new ones are refused; then the socket ends. Resolves once it is closed.
   */
  async drain(): Promise<void> {
    this.draining = true;
    // Keep reading: a request whose payload is still arriving must be able to finish.
    if (!this.failed && this.socket.isPaused()) this.socket.resume();
    if (this.running.size > 0) await new Promise<void>((resolve) => (this.idleWaiter = resolve));
    if (!this.socket.destroyed) this.socket.end(() => this.socket.destroy());
    await this.closed;
  }

  /** Drops the connection at once. */
  abort(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }

  private async dispatch(id: number, header: Buffer, payload: Buffer, controller: AbortController): Promise<void> {
    try {
      const reply = await this.options.handler({ header, payload }, { signal: controller.signal, remoteAddress: this.remoteAddress });
      if (this.running.get(id) !== controller || controller.signal.aborted || this.socket.destroyed) {
        reply.onSent?.();
        return;
      }
      const chunks = payloadChunks(reply.payload);
      const bytes = chunksBytes(chunks);
      if (reply.header.length > HEADER_BYTES_MAX) {
        throw transportErrors.create('TW_TRANSPORT_HEADER_TOO_LARGE', `reply header of ${reply.header.length} bytes is over ${HEADER_BYTES_MAX}`);
      }
      if (bytes > this.options.payloadBytesMax) {
        reply.onSent?.();
        throw transportErrors.create('TW_TRANSPORT_FRAME_TOO_LARGE', `reply payload of ${bytes} bytes is over the limit of ${this.options.payloadBytesMax}`);
      }
      const s = this.socket;
      s.cork();
      s.write(encodeFrameHead(FrameKind.RESPONSE, id, reply.header, bytes));
      for (let i = 0; i < chunks.length - 1; i++) s.write(chunks[i]!);
      if (chunks.length > 0) s.write(chunks[chunks.length - 1]!, () => reply.onSent?.());
      s.uncork();
      if (chunks.length === 0) reply.onSent?.();
    } catch (err) {
      if (this.running.get(id) === controller && !controller.signal.aborted) this.writeError(id, err);
    } finally {
      if (this.running.get(id) === controller) {
        this.running.delete(id);
        this.release(id);
      }
      if (this.socket.writableLength > SERVER_WRITE_BUFFER_HIGH_BYTES) this.pausedForWrites = true;
      this.updateFlow();
      if (this.running.size === 0) this.idleWaiter?.();
    }
  }

  private writeError(id: number, err: unknown): void {
    if (this.socket.destroyed || this.socket.writableEnded || this.failed) return;
    const head = encodeRemoteError(err instanceof TwError ? err : err instanceof Error ? err : new Error(String(err)));
    this.socket.write(encodeFrameHead(FrameKind.ERROR, id, head, 0));
  }

  /** Reads while handlers and unflushed replies stay under their bounds. */
  private updateFlow(): void {
    if (this.failed || this.socket.destroyed) return;
    if (this.draining) {
      if (this.socket.isPaused()) this.socket.resume();
      return;
    }
    const busy =
      this.running.size >= this.options.inflightMax ||
      this.pausedForWrites ||
      this.heldBytes >= SERVER_PAYLOAD_BYTES_PER_CONNECTION_HIGH ||
      this.options.payloadBudget.atHigh;
    // Pause only between frames: a payload whose header was taken is read to its end (its
    // destination is already allocated, so this costs no memory). Its request may feed work
    // that running requests wait on (a storage node's streamed put, with later puts acknowledged
    // only after it); pausing part-way could leave the two waiting on each other.
    if (busy && !this.socket.isPaused() && !this.reader.midPayload) this.socket.pause();
    else if (!busy && this.socket.isPaused()) this.socket.resume();
  }

  /** Garbage on the wire: report, tell the peer (id 0), close. Other connections are not touched. */
  private protocolError(error: TwError): void {
    if (this.failed) return;
    this.failed = true;
    this.options.onError(error);
    this.abortAll(error);
    this.socket.pause();
    if (this.socket.destroyed) return;
    const head = encodeRemoteError(error);
    this.socket.end(encodeFrameHead(FrameKind.ERROR, CONNECTION_REQUEST_ID, head, 0));
    const timer = setTimeout(() => this.socket.destroy(), PROTOCOL_ERROR_LINGER_MS);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  private abortAll(reason: TwError): void {
    for (const c of this.running.values()) c.abort(reason);
    this.running.clear();
    for (const id of [...this.heldById.keys()]) this.release(id);
  }

  private hold(id: number, bytes: number): void {
    if (bytes === 0) return;
    this.heldById.set(id, bytes);
    this.heldBytes += bytes;
    this.options.payloadBudget.take(bytes);
  }

  private release(id: number): void {
    const bytes = this.heldById.get(id);
    if (bytes === undefined) return;
    this.heldById.delete(id);
    this.heldBytes -= bytes;
    this.options.payloadBudget.release(bytes);
  }
}

type StreamHandle = { readStart?: unknown };

/**
 * node:net offers onread (reads into buffers we choose) only to sockets it creates from options,
 * never to accepted ones. So the accepted socket's handle is moved, before any read, into a new
 * Socket built with onread: request payloads are then read from the kernel straight into their
 * destination (a payloadDestination buffer or one of exactly the payload's size), with no copy
 * out of node's 64 KiB read buffers. The emptied socket is destroyed without a handle, which only
 * settles the server's connection count. Returns undefined (caller falls back to 'data' events)
 * if this node's internals do not look as expected.
 */
function adoptForDirectReads(accepted: Socket, sink: FrameSink): { socket: Socket; reader: FrameReader } | undefined {
  const holder = accepted as unknown as { _handle?: StreamHandle | null };
  const handle = holder._handle;
  if (handle === null || handle === undefined || typeof handle.readStart !== 'function' || !accepted.isPaused()) return undefined;
  const reader = new FrameReader(sink, true);
  holder._handle = null;
  const socket = new Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: () => reader.nextReadBuffer(),
      callback: (n: number) => {
        reader.onRead(n);
        return true;
      },
    },
  } as unknown as ConstructorParameters<typeof Socket>[0]);
  // The server's own buffers are never abandoned mid-payload by a caller, so direct reads into
  // payloadDestination buffers are safe; abandon() would still redirect on connection teardown.
  reader.redirect = () => false;
  accepted.destroy();
  return { socket, reader };
}
