import type { Server, Socket } from 'node:net';
import { CONNECTIONS_PER_LISTENER_MAX, type Listener, type PayloadDestination, type RequestHandler } from '@tw/transport';
import type { PayloadBudget } from './payload-budget.js';
import { ServerConnection } from './server-connection.js';

export interface TcpListenerOptions {
  readonly handler: RequestHandler;
  readonly payloadBytesMax: number;
  readonly inflightMax: number;
  readonly onError: (error: Error) => void;
  readonly payloadDestination: PayloadDestination | undefined;
  readonly onClosed: (listener: TcpListener) => void;
  /** Request payload bytes held across this listener's connections. */
  readonly payloadBudget: PayloadBudget;
}

export class TcpListener implements Listener {
  readonly connections = new Set<ServerConnection>();
  readonly payloadBudget: PayloadBudget;
  private closing: Promise<void> | undefined;
  private readonly serverClosed: Promise<void>;

  constructor(
    readonly address: string,
    private readonly server: Server,
    private readonly options: TcpListenerOptions,
  ) {
    this.payloadBudget = options.payloadBudget;
    this.serverClosed = new Promise((resolve) => server.once('close', () => resolve()));
    server.on('connection', (socket: Socket) => this.accept(socket));
    server.on('error', (err) => options.onError(err));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown((c) => c.drain());
    return this.closing;
  }

  abort(): Promise<void> {
    // An abort overrides a graceful close in progress.
    const done = this.shutdown((c) => c.abort());
    this.closing ??= done;
    return done;
  }

  private async shutdown(each: (c: ServerConnection) => Promise<void>): Promise<void> {
    if (this.server.listening) this.server.close();
    await Promise.all([...this.connections].map(each));
    await this.serverClosed;
    this.options.onClosed(this);
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined || this.connections.size >= CONNECTIONS_PER_LISTENER_MAX) {
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(socket, {
      handler: this.options.handler,
      payloadBytesMax: this.options.payloadBytesMax,
      inflightMax: this.options.inflightMax,
      onError: this.options.onError,
      payloadDestination: this.options.payloadDestination,
      payloadBudget: this.payloadBudget,
    });
    this.connections.add(conn);
    void conn.closed.then(() => this.connections.delete(conn));
  }
}
