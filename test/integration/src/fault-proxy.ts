/**
 * A TCP fault proxy for multi-process tests, on loopback only: one listening port per directed
 * link `from -> to` between cluster members, each forwarding to `to`'s real address. Member
 * `from` is configured to reach member `to` at the link's port, so the test sees (and controls)
 * every byte of traffic between members, per direction.
 *
 * Controls:
 * - `cut(id)`: every link from or to member `id` is blocked (the member is partitioned off);
 * - `block(from, to)`: one directed link;
 * - `dropAll()`: every link is blocked;
 * - `heal()`: every link passes again.
 *
 * A blocked link behaves like a network that loses packets: connections open at the moment it is
 * blocked are destroyed on both sides (their half-sent frames could not be resumed anyway), and
 * new connections are accepted but everything they send is read and discarded, nothing comes
 * back. The caller's own deadlines expire, as in a real partition; nothing is refused outright.
 * Healing destroys those black-holed connections too, so the caller reconnects afresh.
 *
 * Forwarding uses stream backpressure (pause the reader while the writer is over its high-water
 * mark), so a link buffers at most about one high-water mark per direction per connection, and
 * connections per link are capped.
 */
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

/** Connections one link keeps open at once; more are destroyed on accept. */
export const PROXY_CONNECTIONS_PER_LINK_MAX = 64;
/** High-water mark of accepted sockets; upstream sockets keep Node's default (16 KiB). A reader
 * is paused while its writer is over the mark, so a connection buffers about one mark a direction. */
export const PROXY_HIGH_WATER_BYTES = 64 * 1024;

export interface LinkStats {
  readonly from: number;
  readonly to: number;
  /** Bytes forwarded, both directions. */
  readonly bytesForwarded: number;
  /** Bytes read and discarded while the link was blocked. */
  readonly bytesDropped: number;
  readonly connectionsAccepted: number;
}

interface Conn {
  readonly client: Socket;
  upstream: Socket | undefined;
  blackholed: boolean;
}

class Link {
  readonly conns = new Set<Conn>();
  blocked = false;
  bytesForwarded = 0;
  bytesDropped = 0;
  connectionsAccepted = 0;
  port = 0;
  readonly server: Server;

  constructor(
    readonly from: number,
    readonly to: number,
    readonly target: { host: string; port: number },
  ) {
    this.server = createServer({ highWaterMark: PROXY_HIGH_WATER_BYTES, noDelay: true }, (socket) => this.#accept(socket));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  #accept(client: Socket): void {
    this.connectionsAccepted++;
    client.on('error', () => undefined);
    if (this.conns.size >= PROXY_CONNECTIONS_PER_LINK_MAX) {
      client.destroy();
      return;
    }
    const conn: Conn = { client, upstream: undefined, blackholed: false };
    this.conns.add(conn);
    client.once('close', () => {
      this.conns.delete(conn);
      conn.upstream?.destroy();
    });
    if (this.blocked) {
      this.#blackhole(conn);
      return;
    }
    const upstream = connect({ host: this.target.host, port: this.target.port, noDelay: true });
    conn.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.once('close', () => client.destroy());
    this.#forward(client, upstream);
    this.#forward(upstream, client);
  }

  /** Copies `src` to `dst` with backpressure; a half-close is passed on. */
  #forward(src: Socket, dst: Socket): void {
    src.on('data', (chunk: Buffer) => {
      this.bytesForwarded += chunk.length;
      if (!dst.write(chunk)) {
        src.pause();
        dst.once('drain', () => src.resume());
      }
    });
    src.once('end', () => {
      if (!dst.destroyed) dst.end();
    });
  }

  /** Reads and discards everything from the client; nothing reaches the target. */
  #blackhole(conn: Conn): void {
    conn.blackholed = true;
    conn.client.on('data', (chunk: Buffer) => {
      this.bytesDropped += chunk.length;
    });
  }

  block(): void {
    if (this.blocked) return;
    this.blocked = true;
    for (const c of this.conns) this.#destroy(c);
  }

  unblock(): void {
    if (!this.blocked) return;
    this.blocked = false;
    for (const c of this.conns) if (c.blackholed) this.#destroy(c);
  }

  #destroy(c: Conn): void {
    c.client.destroy();
    c.upstream?.destroy();
    this.conns.delete(c);
  }

  async close(): Promise<void> {
    for (const c of this.conns) this.#destroy(c);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  stats(): LinkStats {
    return { from: this.from, to: this.to, bytesForwarded: this.bytesForwarded, bytesDropped: this.bytesDropped, connectionsAccepted: this.connectionsAccepted };
  }
}

function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const port = Number(address.slice(i + 1));
  if (host !== '127.0.0.1' || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`fault proxy: ${address} is not a loopback host:port`);
  return { host, port };
}

export class FaultProxy {
  readonly #links = new Map<string, Link>();
  #closed = false;

  private constructor(links: Link[]) {
    for (const l of links) this.#links.set(`${l.from}->${l.to}`, l);
  }

  /**
   * Listens on one loopback port per ordered pair of distinct members; `members` maps each
   * member's id to its real `127.0.0.1:port`.
   */
  static async start(members: ReadonlyMap<number, string>): Promise<FaultProxy> {
    const links: Link[] = [];
    for (const from of members.keys()) {
      for (const [to, address] of members) if (from !== to) links.push(new Link(from, to, parseAddress(address)));
    }
    const proxy = new FaultProxy(links);
    try {
      await Promise.all(links.map((l) => l.listen()));
    } catch (err) {
      await proxy.close();
      throw err;
    }
    return proxy;
  }

  #link(from: number, to: number): Link {
    const l = this.#links.get(`${from}->${to}`);
    if (l === undefined) throw new Error(`fault proxy: no link ${from} -> ${to}`);
    return l;
  }

  /** The address member `from` must use to reach member `to`. */
  address(from: number, to: number): string {
    return `127.0.0.1:${this.#link(from, to).port}`;
  }

  /** Blocks every link from or to `id`. */
  cut(id: number): void {
    for (const l of this.#links.values()) if (l.from === id || l.to === id) l.block();
  }

  /** Blocks the one directed link `from -> to`. */
  block(from: number, to: number): void {
    this.#link(from, to).block();
  }

  /** Blocks every link. */
  dropAll(): void {
    for (const l of this.#links.values()) l.block();
  }

  /** Every link passes traffic again. */
  heal(): void {
    for (const l of this.#links.values()) l.unblock();
  }

  isBlocked(from: number, to: number): boolean {
    return this.#link(from, to).blocked;
  }

  stats(): LinkStats[] {
    return [...this.#links.values()].map((l) => l.stats());
  }

  /** Stops listening and destroys every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#links.values()].map((l) => l.close()));
  }
}
