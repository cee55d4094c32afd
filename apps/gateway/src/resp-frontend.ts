import { type Server, type Socket, createServer } from 'node:net';
import { isTwError } from '@tw/errors';
import { type RespCommand, RespRequestParser, RespSession, dispatch, encodeError, respErrorReply } from '@tw/engine-protocols';
import type { Gateway } from '@tw/gateway-core';
import type { Logger } from '@tw/observability';
import type { AccessPolicy } from './access.js';
import { listenFrontend } from './tcp-frontend.js';
import { RESP_PARSER_BUFFERED_BYTES_MAX, RESP_PENDING_COMMANDS_MAX, RESP_WRITE_BUFFER_BYTES_MAX } from './limits.js';
import type { GatewayMetrics } from './metrics.js';
import { GatewayRespBackend } from './resp-backend.js';

export interface RespFrontendOptions {
  readonly host: string;
  readonly port: number;
  readonly connectionsMax: number;
  readonly gateway: Gateway;
  readonly access: AccessPolicy;
  readonly putMode: 'async' | 'sync';
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

export interface RespFrontend {
  /** `host:port` with the bound port. */
  readonly address: string;
  readonly port: number;
  /** Stops accepting; open connections get `graceMs` to finish, then are destroyed. */
  close(graceMs?: number): Promise<void>;
}

/** Commands that only read: they may run while earlier reads of the same connection still run. */
const READS = new Set(['get', 'mget', 'exists', 'ping', 'echo']);

interface Slot {
  done: boolean;
  reply: Buffer[];
  close: boolean;
}

let nextClientId = 1;

/**
 * One RESP connection: parses pipelined commands, runs them (reads concurrently, anything else
 * after every earlier command and before every later one, so a pipeline behaves as Redis's
 * sequential execution), writes the replies in command order, and pauses reading while too many
 * commands are pending, the parser holds too many bytes, or the socket is not draining.
 */
class RespConnection {
  readonly #parser: RespRequestParser;
  readonly #backend: GatewayRespBackend;
  readonly #session = new RespSession(nextClientId++);
  readonly #abort = new AbortController();
  readonly #slots: Slot[] = [];
  #lastBarrier: Promise<unknown> = Promise.resolve();
  #readsSinceBarrier: Promise<unknown>[] = [];
  #stopParsing = false;
  #inputEnded = false;
  #closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly o: RespFrontendOptions,
  ) {
    this.#backend = new GatewayRespBackend(o.gateway, o.access, socket.remoteAddress, o.putMode);
    this.#parser = new RespRequestParser({ authRequired: this.#backend.authRequired() });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.#stopParsing) return;
      this.#parser.push(chunk);
      this.#pump();
    });
    socket.on('drain', () => this.#pump());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#abort.abort();
    });
    socket.on('end', () => {
      // Half-close from the client: answer what was asked, then close.
      this.#inputEnded = true;
      this.#pump();
    });
  }

  #pump(): void {
    while (!this.#stopParsing && !this.#closed && this.#slots.length < RESP_PENDING_COMMANDS_MAX) {
      // Before AUTH, Redis parses a command only after the previous one ran (its bounds depend on it).
      if (this.#backend.authRequired() && this.#slots.length > 0) break;
      this.#parser.authRequired = this.#backend.authRequired();
      let command: RespCommand | null;
      try {
        command = this.#parser.next();
      } catch (err) {
        this.#stopParsing = true;
        const reply = respErrorReply(err);
        this.#slots.push({ done: true, reply: reply === null ? [] : [reply], close: true });
        this.o.metrics.request('resp', 'protocol-error', isTwError(err) ? err.code : 'error');
        this.#flush();
        return;
      }
      if (command === null) break;
      this.#start(command);
    }
    this.#flowControl();
    this.#endIfIdle();
  }

  #start(command: RespCommand): void {
    const slot: Slot = { done: false, reply: [], close: false };
    this.#slots.push(slot);
    const name = command[0]?.toString('latin1').toLowerCase() ?? '';
    const run = async (): Promise<void> => {
      try {
        const r = await dispatch(command, this.#backend, { signal: this.#abort.signal, session: this.#session });
        slot.reply = r.reply;
        slot.close = r.close;
        this.o.metrics.request('resp', READS.has(name) || name === 'set' || name === 'del' || name === 'auth' ? name : 'other', r.reply[0]?.[0] === 0x2d ? 'error' : 'ok');
      } catch (err) {
        if (this.#closed) return;
        // Not a TwError (a bug): answer an error, keep the connection (as for any failed command).
        this.o.logger.error({ err, command: name }, 'resp command failed unexpectedly');
        slot.reply = [encodeError(`TW_GATEWAY_INTERNAL ${(err as Error).message ?? String(err)}`)];
      }
      slot.done = true;
      this.#flush();
      this.#pump();
    };
    let p: Promise<void>;
    if (READS.has(name)) {
      p = this.#lastBarrier.then(run);
      this.#readsSinceBarrier.push(p);
    } else {
      p = Promise.all([this.#lastBarrier, ...this.#readsSinceBarrier]).then(run);
      this.#lastBarrier = p;
      this.#readsSinceBarrier = [];
    }
  }

  #flush(): void {
    if (this.#closed) return;
    let wrote = false;
    while (this.#slots.length > 0 && this.#slots[0]!.done) {
      const slot = this.#slots.shift()!;
      if (!wrote) this.socket.cork();
      wrote = true;
      for (const piece of slot.reply) this.socket.write(piece);
      if (slot.close) {
        this.#stopParsing = true;
        this.#slots.length = 0;
        this.socket.uncork();
        this.socket.end();
        this.socket.destroySoon();
        return;
      }
    }
    if (wrote) this.socket.uncork();
  }

  #endIfIdle(): void {
    if ((this.#stopParsing || this.#inputEnded) && this.#slots.length === 0 && !this.#closed && !this.socket.writableEnded) this.socket.end();
  }

  #flowControl(): void {
    if (this.#closed) return;
    const busy =
      this.#slots.length >= RESP_PENDING_COMMANDS_MAX || this.#parser.bufferedBytes > RESP_PARSER_BUFFERED_BYTES_MAX || this.socket.writableLength > RESP_WRITE_BUFFER_BYTES_MAX;
    if (busy && !this.socket.isPaused()) this.socket.pause();
    else if (!busy && this.socket.isPaused()) this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  get idle(): boolean {
    return this.#slots.length === 0;
  }
}

/** The RESP2 front-end on node:net. */
export async function startRespFrontend(o: RespFrontendOptions): Promise<RespFrontend> {
  const connections = new Set<RespConnection>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    if (connections.size >= o.connectionsMax) {
      socket.end(encodeError('max number of clients reached'));
      return;
    }
    const c = new RespConnection(socket, o);
    connections.add(c);
    socket.on('close', () => connections.delete(c));
  });
  server.maxConnections = o.connectionsMax + 16;
  return listenFrontend('resp', server, connections, o);
}
