import { isTwError } from '@tw/errors';
import type { Logger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';

/** Retry period after the coordinators refuse a registration (not a transient failure). */
const REFUSED_RETRY_MS = 5000;

export interface RegistrationOptions {
  readonly coordinators: readonly string[];
  readonly nodeId: string;
  readonly dataAddress: string;
  readonly adminUrl: string;
  readonly failureDomain: string;
  readonly weight: number;
  readonly heartbeatIntervalMs: number;
  readonly capacity: () => { capacityBytes: number; usedBytes: number; fragmentCount: number };
  readonly logger: Logger;
}

/**
 * Registers the node with the coordinators and heartbeats every interval, so that a silent node
 * is marked down and a returning one up again. Registration retries until it succeeds (the
 * coordinators may still be electing a leader); a heartbeat the coordinators do not recognise
 * (the map lost the node) triggers a new registration.
 */
export class CoordinatorRegistration {
  readonly #client: CoordinatorClient;
  readonly #opts: RegistrationOptions;
  #timer: NodeJS.Timeout | undefined;
  #registered = false;
  #stopped = false;
  #seq = 0;
  readonly #clientId = `storage-node-${process.pid}-${Date.now()}`;

  constructor(options: RegistrationOptions) {
    this.#opts = options;
    this.#client = new CoordinatorClient(options.coordinators, { attemptsMax: 6, deadlineMs: 3000 });
  }

  get registered(): boolean {
    return this.#registered;
  }

  start(): void {
    const loop = async (): Promise<void> => {
      if (this.#stopped) return;
      let delayMs = this.#opts.heartbeatIntervalMs;
      try {
        if (!this.#registered) await this.#register();
        else await this.#heartbeat();
      } catch (err) {
        // A refusal (bad domain path, removed node id) will not fix itself quickly: back off.
        if (!(err as { retryable?: boolean }).retryable) delayMs = Math.max(delayMs, REFUSED_RETRY_MS);
        this.#opts.logger.warn({ err: { code: (err as { code?: string }).code, message: (err as Error).message } }, this.#registered ? 'heartbeat failed' : 'registration failed; retrying');
      }
      if (!this.#stopped) this.#timer = setTimeout(() => void loop(), delayMs);
    };
    void loop();
  }

  async #register(): Promise<void> {
    const o = this.#opts;
    const cap = o.capacity();
    const res = await this.#client.call('registerNode', {
      node: {
        nodeId: o.nodeId,
        dataAddress: o.dataAddress,
        adminUrl: o.adminUrl,
        failureDomain: o.failureDomain.split('/').filter(Boolean),
        weight: o.weight,
        state: 'up',
        capacityBytes: String(cap.capacityBytes),
        usedBytes: String(cap.usedBytes),
      },
      requestId: { clientId: this.#clientId, seq: String(++this.#seq) },
    });
    this.#registered = true;
    o.logger.info({ epoch: res.epoch }, 'registered with the coordinators');
  }

  async #heartbeat(): Promise<void> {
    const cap = this.#opts.capacity();
    try {
      await this.#client.call('heartbeat', { nodeId: this.#opts.nodeId, capacityBytes: String(cap.capacityBytes), usedBytes: String(cap.usedBytes), fragmentCount: String(cap.fragmentCount) });
    } catch (err) {
      if (isTwError(err, 'TW_COORD_BAD_REQUEST')) this.#registered = false;
      throw err;
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#client.close();
  }
}
