import { type Server, type Socket, createServer } from 'node:net';
import { isTwError } from '@tw/errors';
import { LM_COMMAND, LM_DTYPE, LM_FAIL_REPLY, LM_LOCATION, LM_MEMORY_FORMAT, LM_SUCCESS_REPLY, type LmRequest, LmRequestParser, encodeLmGetReply } from '@tw/engine-protocols';
import type { Gateway } from '@tw/gateway-core';
import type { Logger } from '@tw/observability';
import { listenFrontend } from './tcp-frontend.js';
import { LM_PARSER_BUFFERED_BYTES_MAX } from './limits.js';
import type { GatewayMetrics } from './metrics.js';

export interface LmFrontendOptions {
  readonly host: string;
  readonly port: number;
  readonly connectionsMax: number;
  readonly namespace: string;
  readonly gateway: Gateway;
  readonly putMode: 'async' | 'sync';
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

export interface LmFrontend {
  readonly address: string;
  readonly port: number;
  close(graceMs?: number): Promise<void>;
}

/**
 * lm:// values are stored behind a 32-byte header so a GET can answer the PUT's fmt, dtype,
 * shape and location: magic "TWLM", then int32 LE fmt, dtype, location, shape0..3 (7 fields).
 */
const META_MAGIC = 0x4d4c5754; // "TWLM" read as uint32 LE
export const LM_META_BYTES = 32;

export function encodeLmMeta(r: Pick<LmRequest, 'fmt' | 'dtype' | 'location' | 'shape'>): Buffer {
  const b = Buffer.alloc(LM_META_BYTES);
  b.writeUInt32LE(META_MAGIC, 0);
  b.writeInt32LE(r.fmt, 4);
  b.writeInt32LE(r.dtype, 8);
  b.writeInt32LE(r.location, 12);
  r.shape.forEach((d, i) => b.writeInt32LE(d, 16 + i * 4));
  return b;
}

/** Splits a stored value into its lm:// meta and payload (values stored by other front-ends get neutral meta). */
export function decodeLmValue(v: Buffer): { fmt: number; dtype: number; location: number; shape: [number, number, number, number]; payload: Buffer } {
  if (v.length >= LM_META_BYTES && v.readUInt32LE(0) === META_MAGIC) {
    return {
      fmt: v.readInt32LE(4),
      dtype: v.readInt32LE(8),
      location: v.readInt32LE(12),
      shape: [v.readInt32LE(16), v.readInt32LE(20), v.readInt32LE(24), v.readInt32LE(28)],
      payload: v.subarray(LM_META_BYTES),
    };
  }
  return { fmt: LM_MEMORY_FORMAT.BINARY, dtype: LM_DTYPE.UINT8, location: LM_LOCATION.NONE, shape: [v.length, 0, 0, 0], payload: v };
}

/** One lm:// connection: one request at a time, as LMCache's server does. */
class LmConnection {
  readonly #parser = new LmRequestParser();
  readonly #abort = new AbortController();
  #busy = false;
  #closed = false;
  #inputEnded = false;

  constructor(
    private readonly socket: Socket,
    private readonly o: LmFrontendOptions,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#parser.push(chunk);
      if (this.#parser.bufferedBytes > LM_PARSER_BUFFERED_BYTES_MAX && this.#busy) socket.pause();
      void this.#loop();
    });
    socket.on('error', () => undefined);
    socket.on('end', () => {
      this.#inputEnded = true;
      void this.#loop();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#abort.abort();
    });
  }

  get idle(): boolean {
    return !this.#busy;
  }

  destroy(): void {
    this.socket.destroy();
  }

  async #loop(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (!this.#closed) {
        let req: LmRequest | null;
        try {
          req = this.#parser.next();
        } catch (err) {
          // The stream cannot be re-synchronised: LMCache's server drops the connection too.
          this.o.metrics.request('lmcache', 'protocol-error', isTwError(err) ? err.code : 'error');
          this.o.logger.debug({ err }, 'lm:// protocol error, closing');
          this.socket.destroy();
          return;
        }
        if (req === null) break;
        await this.#handle(req);
        if (this.socket.writableLength > LM_PARSER_BUFFERED_BYTES_MAX) await new Promise<void>((r) => this.socket.once('drain', r).once('close', r));
      }
      if (this.#inputEnded && !this.#closed) this.socket.end();
    } finally {
      this.#busy = false;
      if (!this.#closed && this.socket.isPaused()) this.socket.resume();
    }
  }

  async #handle(req: LmRequest): Promise<void> {
    const ns = this.o.namespace;
    const key = Buffer.from(req.key, 'utf8');
    const signal = this.#abort.signal;
    const write = (pieces: Buffer[]): void => {
      if (this.#closed) return;
      this.socket.cork();
      for (const p of pieces) this.socket.write(p);
      this.socket.uncork();
    };
    try {
      switch (req.command) {
        case LM_COMMAND.PUT: {
          // No reply (LMCache's protocol): a failure is only logged and counted.
          await this.o.gateway.put(ns, key, [encodeLmMeta(req), req.payload ?? Buffer.alloc(0)], { mode: this.o.putMode, signal });
          this.o.metrics.request('lmcache', 'put', 'ok');
          return;
        }
        case LM_COMMAND.GET: {
          const v = await this.o.gateway.get(ns, key, { signal });
          if (v === undefined) {
            this.o.metrics.request('lmcache', 'get', 'miss');
            write([LM_FAIL_REPLY]);
            return;
          }
          const d = decodeLmValue(v);
          this.o.metrics.request('lmcache', 'get', 'ok');
          write(encodeLmGetReply({ fmt: d.fmt, dtype: d.dtype, shape: d.shape, location: d.location }, d.payload));
          return;
        }
        case LM_COMMAND.EXIST: {
          const r = await this.o.gateway.lookupPrefix(ns, [key], { signal });
          this.o.metrics.request('lmcache', 'exist', r.hits === 1 ? 'ok' : 'miss');
          write([r.hits === 1 ? LM_SUCCESS_REPLY : LM_FAIL_REPLY]);
          return;
        }
        case LM_COMMAND.HEALTH:
          this.o.metrics.request('lmcache', 'health', 'ok');
          write([LM_SUCCESS_REPLY]);
          return;
        default:
          // LIST: not served (LMCache's server does not implement it either).
          this.o.metrics.request('lmcache', 'other', 'unsupported');
          write([LM_FAIL_REPLY]);
          return;
      }
    } catch (err) {
      if (this.#closed) return;
      this.o.metrics.request('lmcache', 'error', isTwError(err) ? err.code : 'error');
      this.o.logger.warn({ err, command: req.command }, 'lm:// request failed');
      if (req.command !== LM_COMMAND.PUT) write([LM_FAIL_REPLY]);
    }
  }
}

/** LMCache's lm:// server protocol on node:net. */
export async function startLmFrontend(o: LmFrontendOptions): Promise<LmFrontend> {
  const connections = new Set<LmConnection>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    if (connections.size >= o.connectionsMax) {
      socket.destroy();
      return;
    }
    const c = new LmConnection(socket, o);
    connections.add(c);
    socket.on('close', () => connections.delete(c));
  });
  return listenFrontend('lm://', server, connections, o);
}
