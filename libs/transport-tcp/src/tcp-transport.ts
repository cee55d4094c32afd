import { createServer } from 'node:net';
import {
  CONNECTIONS_PER_PEER_MAX_DEFAULT,
  INFLIGHT_BYTES_PER_CONNECTION_MAX_DEFAULT,
  INFLIGHT_PER_CONNECTION_MAX_DEFAULT,
  PAYLOAD_BYTES_MAX_CAP,
  PAYLOAD_BYTES_MAX_DEFAULT,
  SERVER_INFLIGHT_PER_CONNECTION_MAX_DEFAULT,
  transportErrors,
  type DialOptions,
  type ListenOptions,
  type Listener,
  type MemoryRegion,
  type Peer,
  type RequestHandler,
  type Transport,
  type TransportFactory,
  type TransportLimitOptions,
  type TransportStats,
} from '@tw/transport';
import { formatAddress, parseAddress } from './address.js';
import { SERVER_PAYLOAD_BYTES_PER_LISTENER_HARD, SERVER_PAYLOAD_BYTES_PER_LISTENER_HIGH } from './limits.js';
import { PayloadBudget } from './payload-budget.js';
import { TcpListener } from './tcp-listener.js';
import { TcpPeer } from './tcp-peer.js';

export interface TcpTransportOptions extends TransportLimitOptions {
  /**
   * Request payload bytes a listener's connections may hold (received, handlers running) before
   * they all stop reading new requests. Default SERVER_PAYLOAD_BYTES_PER_LISTENER_HIGH.
   */
  readonly serverPayloadBytesHigh?: number;
  /**
   * Past this many held bytes a new request is refused at its header with TW_TRANSPORT_SERVER_BUSY.
   * At least serverPayloadBytesHigh. Default SERVER_PAYLOAD_BYTES_PER_LISTENER_HARD.
   */
  readonly serverPayloadBytesHard?: number;
}

/** Nothing yet: TCP needs no injected services (logging goes through ListenOptions.onError). */
export type TcpTransportComponents = Record<string, never>;

function bounded(name: string, value: number | undefined, fallback: number, cap: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > cap) {
    throw transportErrors.create('TW_TRANSPORT_BAD_OPTION', `option ${name} must be an integer in [1, ${cap}], got ${v}`);
  }
  return v;
}

/**
 * The TCP backend: length-prefixed frames (see @tw/transport's wire.ts) over node:net, request
 * ids, pipelining, a small pool of connections per peer, back-pressure, payloads written from the
 * caller's buffers with one gather write and read into caller-supplied destinations.
 */
export function tcpTransport(options: TcpTransportOptions = {}): TransportFactory<TcpTransportComponents> {
  const payloadBytesMax = bounded('payloadBytesMax', options.payloadBytesMax, PAYLOAD_BYTES_MAX_DEFAULT, PAYLOAD_BYTES_MAX_CAP);
  const limits = {
    payloadBytesMax,
    inflightPerConnectionMax: bounded('inflightPerConnectionMax', options.inflightPerConnectionMax, INFLIGHT_PER_CONNECTION_MAX_DEFAULT, 65_536),
    inflightBytesPerConnectionMax: bounded('inflightBytesPerConnectionMax', options.inflightBytesPerConnectionMax, INFLIGHT_BYTES_PER_CONNECTION_MAX_DEFAULT, 2 ** 32),
    connectionsPerPeerMax: bounded('connectionsPerPeerMax', options.connectionsPerPeerMax, CONNECTIONS_PER_PEER_MAX_DEFAULT, 64),
  };
  const serverInflightMax = bounded('serverInflightPerConnectionMax', options.serverInflightPerConnectionMax, SERVER_INFLIGHT_PER_CONNECTION_MAX_DEFAULT, 65_536);
  const high = bounded('serverPayloadBytesHigh', options.serverPayloadBytesHigh, SERVER_PAYLOAD_BYTES_PER_LISTENER_HIGH, 2 ** 40);
  const hard = bounded('serverPayloadBytesHard', options.serverPayloadBytesHard, Math.max(high, SERVER_PAYLOAD_BYTES_PER_LISTENER_HARD), 2 ** 40);
  if (hard < high) throw transportErrors.create('TW_TRANSPORT_BAD_OPTION', `option serverPayloadBytesHard (${hard}) must be at least serverPayloadBytesHigh (${high})`);
  return () => new TcpTransport(limits, serverInflightMax, { high, hard });
}

class TcpTransport implements Transport {
  readonly name = 'tcp';
  private readonly peers = new Set<TcpPeer>();
  private readonly listeners = new Set<TcpListener>();
  private closed = false;

  constructor(
    private readonly limits: ConstructorParameters<typeof TcpPeer>[3],
    private readonly serverInflightMax: number,
    private readonly serverPayloadBytes: { high: number; hard: number },
  ) {}

  async listen(address: string, handler: RequestHandler, options: ListenOptions = {}): Promise<Listener> {
    this.ensureOpen();
    const { host, port } = parseAddress(address);
    options.signal?.throwIfAborted();
    // pauseOnConnect: nothing is read before ServerConnection moves the socket to direct reads.
    const server = createServer({ noDelay: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(transportErrors.create('TW_TRANSPORT_LISTEN_FAILED', `listen on ${address} failed: ${err.message}`, { cause: err })));
      server.listen({ host, port }, () => resolve());
    });
    const bound = server.address();
    const boundAddress = typeof bound === 'object' && bound !== null ? formatAddress(bound.address, bound.port) : address;
    const listener = new TcpListener(boundAddress, server, {
      handler,
      payloadBytesMax: this.limits.payloadBytesMax,
      inflightMax: this.serverInflightMax,
      onError: options.onError ?? (() => undefined),
      payloadDestination: options.payloadDestination,
      payloadBudget: new PayloadBudget(this.serverPayloadBytes.high, this.serverPayloadBytes.hard),
      onClosed: (l) => this.listeners.delete(l),
    });
    this.listeners.add(listener);
    options.signal?.addEventListener('abort', () => void listener.close(), { once: true });
    return listener;
  }

  async dial(address: string, options: DialOptions = {}): Promise<Peer> {
    this.ensureOpen();
    const { host, port } = parseAddress(address);
    if (options.signal?.aborted) throw transportErrors.create('TW_TRANSPORT_ABORTED', `dial ${address} aborted`, { cause: options.signal.reason });
    const peer = new TcpPeer(address, host, port, this.limits, (p) => this.peers.delete(p));
    this.peers.add(peer);
    try {
      await peer.start(options.signal);
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  registerMemory(buffer: Uint8Array): MemoryRegion {
    // TCP needs no registration: the socket reads from and writes to any buffer.
    return { buffer, remoteKey: new Uint8Array(0), deregister: () => undefined };
  }

  stats(): TransportStats {
    let connections = 0;
    let pendingRequests = 0;
    for (const p of this.peers) {
      connections += p.connectionCount;
      pendingRequests += p.pendingRequests;
    }
    for (const l of this.listeners) connections += l.connections.size;
    return { listeners: this.listeners.size, connections, pendingRequests };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...[...this.peers].map((p) => p.close()), ...[...this.listeners].map((l) => l.close())]);
  }

  private ensureOpen(): void {
    if (this.closed) throw transportErrors.create('TW_TRANSPORT_CLOSED', 'the transport is closed');
  }
}
