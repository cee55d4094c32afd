import { FragmentClient } from '@tw/fragment-protocol';
import type { Transport } from '@tw/transport';
import { gatewayErrors } from './errors.js';
import { PEERS_MAX } from './limits.js';

/** Transport codes after which the connection to a node is dropped and redialled next time. */
const CONNECTION_CODES = new Set(['TW_TRANSPORT_CONNECT_FAILED', 'TW_TRANSPORT_CONNECTION_CLOSED', 'TW_TRANSPORT_CLOSED']);

/**
 * One transport Peer (with its own small connection pool) per storage-node address, dialled on
 * first use. A node whose connection failed is "suspect" for `suspectMs`: readers prefer other
 * fragments over it, so a dead node costs parity reads, not timeouts.
 */
export class PeerPool {
  readonly #clients = new Map<string, Promise<FragmentClient>>();
  readonly #suspectUntil = new Map<string, number>();
  #closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly nowMs: () => number,
    private readonly suspectMs: number,
  ) {}

  client(address: string, signal?: AbortSignal): Promise<FragmentClient> {
    if (this.#closed) return Promise.reject(gatewayErrors.create('TW_GATEWAY_CLOSED', 'gateway is closed'));
    let c = this.#clients.get(address);
    if (c === undefined) {
      if (this.#clients.size >= PEERS_MAX) return Promise.reject(gatewayErrors.create('TW_GATEWAY_NO_PLACEMENT', `more than ${PEERS_MAX} storage nodes`));
      c = this.transport.dial(address, signal === undefined ? {} : { signal }).then((peer) => new FragmentClient(peer));
      this.#clients.set(address, c);
      c.catch(() => {
        if (this.#clients.get(address) === c) this.#clients.delete(address);
        this.markSuspect(address);
      });
    }
    return c;
  }

  /** Called with the error of a call to `address`: connection failures drop the peer. */
  failed(address: string, err: unknown): void {
    const code = (err as { code?: string }).code;
    if (code !== undefined && CONNECTION_CODES.has(code)) {
      const c = this.#clients.get(address);
      this.#clients.delete(address);
      void c?.then((fc) => fc.peer.close()).catch(() => undefined);
      this.markSuspect(address);
    }
  }

  markSuspect(address: string): void {
    this.#suspectUntil.set(address, this.nowMs() + this.suspectMs);
    if (this.#suspectUntil.size > PEERS_MAX) this.#suspectUntil.delete(this.#suspectUntil.keys().next().value!);
  }

  isSuspect(address: string): boolean {
    const t = this.#suspectUntil.get(address);
    if (t === undefined) return false;
    if (t <= this.nowMs()) {
      this.#suspectUntil.delete(address);
      return false;
    }
    return true;
  }

  /** Closes peers of addresses no longer in the cluster map. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, c] of this.#clients) {
      if (addresses.has(address)) continue;
      this.#clients.delete(address);
      void c.then((fc) => fc.peer.close()).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(all.map((c) => c.then((fc) => fc.peer.close()).catch(() => undefined)));
  }
}
