import { isTwError } from '@tw/errors';
import type { GatewayCoordinator } from './coordinator.js';
import { aborted } from './byte-budget.js';
import { gatewayErrors } from './errors.js';
import { LOOKUP_BATCH_KEYS_MAX } from './limits.js';
import { type GatewayRecord, recordsOfLookup } from './record.js';

interface Waiter {
  readonly key: Buffer;
  readonly resolve: (r: GatewayRecord | undefined) => void;
  readonly reject: (e: Error) => void;
}

/**
 * Batches the record lookups of single-key reads: keys asked for in the same turn of the event
 * loop go out in one lookupPrefix call (up to 4,096 keys). lookupPrefix stops at the first miss,
 * so the keys after it are asked again in the next round: every round settles at least one key,
 * and a batch of all hits (the common case: engines read what a lookup just found) is one call.
 */
export class LookupBatcher {
  readonly #queues = new Map<string, Waiter[]>();
  #scheduled = false;

  constructor(
    private readonly coordinator: GatewayCoordinator,
    private readonly onCall: (keys: number) => void,
  ) {}

  lookup(namespace: string, key: Buffer, signal?: AbortSignal): Promise<GatewayRecord | undefined> {
    if (signal?.aborted) return Promise.reject(aborted(signal));
    const p = new Promise<GatewayRecord | undefined>((resolve, reject) => {
      let q = this.#queues.get(namespace);
      if (q === undefined) {
        q = [];
        this.#queues.set(namespace, q);
      }
      q.push({ key, resolve, reject });
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    if (signal === undefined) return p;
    // The lookup itself still runs (it is shared); only this caller stops waiting.
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(aborted(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const queues = [...this.#queues];
    this.#queues.clear();
    for (const [ns, waiters] of queues) {
      for (let i = 0; i < waiters.length; i += LOOKUP_BATCH_KEYS_MAX) void this.#run(ns, waiters.slice(i, i + LOOKUP_BATCH_KEYS_MAX));
    }
  }

  async #run(namespace: string, waiters: Waiter[]): Promise<void> {
    let rest = waiters;
    // Bounded: each round settles at least one waiter.
    while (rest.length > 0) {
      let res;
      try {
        this.onCall(rest.length);
        // Packed records: one bytes field instead of a protobuf message per record (a 1,024-record
        // reply cost ~27 ms of serialization on the coordinator in message form).
        res = await this.coordinator.call('lookupPrefix', { namespace, keys: rest.map((w) => w.key), token: '', includeRecords: true, packed: true });
      } catch (err) {
        const e = gatewayErrors.create('TW_GATEWAY_LOOKUP_FAILED', `lookup failed: ${(err as Error).message}`, { cause: err, details: isTwError(err) ? { code: err.code } : {} });
        for (const w of rest) w.reject(e);
        return;
      }
      let records: GatewayRecord[];
      try {
        records = recordsOfLookup(namespace, res);
      } catch (err) {
        for (const w of rest) w.reject(err as Error);
        return;
      }
      const hits = Math.min(res.hits, rest.length, records.length);
      for (let i = 0; i < hits; i++) rest[i]!.resolve(records[i]!);
      rest[hits]?.resolve(undefined);
      rest = rest.slice(hits + 1);
    }
  }
}
