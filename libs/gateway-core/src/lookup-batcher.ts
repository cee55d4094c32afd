import { isTwError } from '@tw/errors';
import { type LookupPrefixResponseMsg, encodeWireKeys } from '@tw/rpc';
import type { GatewayCoordinator } from './coordinator.js';
import { aborted } from './byte-budget.js';
import { gatewayErrors } from './errors.js';
import { LOOKUP_BATCH_KEYS_MAX } from './limits.js';
import { type GatewayRecord, recordsOfLookup } from './record.js';

/**
 * One LookupPrefix call with packed keys and packed records: one bytes field each way instead of
 * a length-delimited field (and a Buffer on the coordinator) per key and a message per record. A
 * coordinator that predates packedKeys reads none of the keys (keysRead 0): it is asked again
 * with the keys as messages.
 */
export async function lookupPacked(coordinator: GatewayCoordinator, namespace: string, keys: Buffer[], options: { signal?: AbortSignal } = {}): Promise<LookupPrefixResponseMsg> {
  const res = await coordinator.call('lookupPrefix', { namespace, keys: [], packedKeys: encodeWireKeys(keys), token: '', includeRecords: true, packed: true }, options);
  if ((res.keysRead ?? 0) === keys.length) return res;
  return coordinator.call('lookupPrefix', { namespace, keys, token: '', includeRecords: true, packed: true }, options);
}

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
        res = await lookupPacked(this.coordinator, namespace, rest.map((w) => w.key));
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
