import { transportErrors } from '@tw/transport';
import { CHANNEL_QUEUE_MAX, LATENCY_MS_MAX } from './limits.js';
import { seededRandom } from './random.js';

export interface MemoryNetworkKnobs {
  /** One-way delivery delay in ms, drawn uniformly in [min, max] per message (seeded). Default 0. */
  readonly latencyMs?: number | { readonly min: number; readonly max: number };
  /** Probability that a request or response message is lost (seeded). Default 0. */
  readonly dropProbability?: number;
  /** Deliver messages of one connection in the order their delays say, not send order. Default false. */
  readonly reorder?: boolean;
}

export interface MemoryNetworkOptions extends MemoryNetworkKnobs {
  /** Seed of every random draw (latency, drop); the same seed and inputs replay the same run. */
  readonly seed?: number;
}

/** Time, for the simulator: a virtual clock plugs in here. Defaults use node timers. */
export interface MemoryNetworkComponents {
  /** Runs `fn` after `delayMs` (0: on a later turn of the event loop, never synchronously). */
  readonly schedule?: (delayMs: number, fn: () => void) => void;
}

/** One direction of a connection: messages in send order. */
export class Channel {
  readonly queue: (() => void)[] = [];
}

/** A message the network may drop; close notifications are never dropped. */
export type MessageKind = 'data' | 'control';

export interface NetworkEndpoint {
  /** The node name, used by partitions. */
  readonly node: string;
}

/**
 * The in-process network every memory transport of one test or simulation shares: the registry
 * of listeners, and the knobs (latency, drop, reorder, partitions) driven by one seed.
 */
export class MemoryNetwork {
  private readonly random: () => number;
  private latency = { min: 0, max: 0 };
  private dropProbability = 0;
  private reorder = false;
  private readonly blocked = new Set<string>();
  private readonly schedule: (delayMs: number, fn: () => void) => void;
  /** Listeners by address; the value's owner node is checked against partitions at dial. */
  readonly listeners = new Map<string, { node: string; accept: (conn: unknown) => void }>();
  private portNext = 1;
  private nodeNext = 1;
  /** Messages dropped so far (by chance or partition), for tests and the simulator's trace. */
  dropped = 0;
  delivered = 0;

  constructor(options: MemoryNetworkOptions = {}, components: MemoryNetworkComponents = {}) {
    this.random = seededRandom(options.seed ?? 1);
    this.schedule = components.schedule ?? ((ms, fn) => (ms <= 0 ? setImmediate(fn) : setTimeout(fn, ms)));
    this.set(options);
  }

  /** Changes knobs mid-run (the simulator turns faults on and off). */
  set(knobs: MemoryNetworkKnobs): void {
    if (knobs.latencyMs !== undefined) {
      const l = typeof knobs.latencyMs === 'number' ? { min: knobs.latencyMs, max: knobs.latencyMs } : knobs.latencyMs;
      if (!(l.min >= 0 && l.max >= l.min && l.max <= LATENCY_MS_MAX)) {
        throw transportErrors.create('TW_TRANSPORT_BAD_OPTION', `latencyMs must satisfy 0 <= min <= max <= ${LATENCY_MS_MAX}`);
      }
      this.latency = { min: l.min, max: l.max };
    }
    if (knobs.dropProbability !== undefined) {
      if (!(knobs.dropProbability >= 0 && knobs.dropProbability <= 1)) throw transportErrors.create('TW_TRANSPORT_BAD_OPTION', 'dropProbability must be in [0, 1]');
      this.dropProbability = knobs.dropProbability;
    }
    if (knobs.reorder !== undefined) this.reorder = knobs.reorder;
  }

  /** Cuts traffic both ways between every node of `a` and every node of `b` (messages are lost). */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}\u0000${y}`);
      this.blocked.add(`${y}\u0000${x}`);
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.blocked.clear();
  }

  isPartitioned(from: string, to: string): boolean {
    return this.blocked.has(`${from}\u0000${to}`);
  }

  /** A fresh node name for a transport that was given none. */
  newNodeName(): string {
    return `node-${this.nodeNext++}`;
  }

  /** Resolves 'name:0' to a fresh port, like a kernel would. */
  resolveListenAddress(address: string): string {
    return address.endsWith(':0') ? `${address.slice(0, -2)}:${this.portNext++}` : address;
  }

  /**
   * Sends one message on `channel` from `from` to `to`: dropped by partition or chance ('data'
   * only), else delivered after a drawn latency, in send order unless reorder is on.
   */
  send(channel: Channel, from: string, to: string, kind: MessageKind, deliver: () => void): void {
    if (kind === 'data' && (this.isPartitioned(from, to) || (this.dropProbability > 0 && this.random() < this.dropProbability))) {
      this.dropped++;
      return;
    }
    const delay = this.latency.max === 0 ? 0 : this.latency.min + this.random() * (this.latency.max - this.latency.min);
    if (this.reorder) {
      this.schedule(delay, () => {
        this.delivered++;
        deliver();
      });
      return;
    }
    if (channel.queue.length >= CHANNEL_QUEUE_MAX) throw transportErrors.create('TW_TRANSPORT_QUEUE_FULL', 'memory channel queue is full');
    channel.queue.push(deliver);
    // Each timer delivers the head of the queue, so order holds whatever the drawn delays.
    this.schedule(delay, () => {
      const next = channel.queue.shift();
      if (next !== undefined) {
        this.delivered++;
        next();
      }
    });
  }
}

/** Creates the shared in-memory network for one test or simulation. */
export function memoryNetwork(options: MemoryNetworkOptions = {}, components: MemoryNetworkComponents = {}): MemoryNetwork {
  return new MemoryNetwork(options, components);
}
