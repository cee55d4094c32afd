import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import type { ExtentStore } from '@tw/extent-store';
import type { Logger } from '@tw/observability';
import { CoordinatorClient, type FragmentLivenessName } from '@tw/rpc';
import type { StorageNodeConfig } from './config.js';
import { FragmentGc, type GcIdentityStore, type Liveness } from './fragment-gc.js';

const IDENTITY_FILE = 'gc-identity.json';

const LIVENESS: Record<FragmentLivenessName, Liveness> = {
  FRAGMENT_LIVENESS_LIVE: 'live',
  FRAGMENT_LIVENESS_DEAD: 'dead',
  FRAGMENT_LIVENESS_UNKNOWN: 'unknown',
};

/** gc-identity.json in the data folder, written atomically (temp file + rename). */
export function fileIdentityStore(dataDir: string): GcIdentityStore {
  const path = join(dataDir, IDENTITY_FILE);
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
      const v = JSON.parse(text) as { nodeId?: unknown; registeredAtMs?: unknown };
      if (typeof v.nodeId !== 'string' || typeof v.registeredAtMs !== 'number') throw new Error(`${path} is malformed`);
      return { nodeId: v.nodeId, registeredAtMs: v.registeredAtMs };
    },
    save(identity) {
      writeFileSync(`${path}.tmp`, `${JSON.stringify(identity)}\n`);
      renameSync(`${path}.tmp`, path);
    },
  };
}

/** Fragment requests completed per second over the last full second (the sweep's "busy" signal). */
export class RequestRate {
  #windowStartMs: number;
  #count = 0;
  #rate = 0;
  constructor(private readonly nowMs: () => number) {
    this.#windowStartMs = nowMs();
  }
  hit(): void {
    this.#roll();
    this.#count++;
  }
  perSecond(): number {
    this.#roll();
    return this.#rate;
  }
  #roll(): void {
    const now = this.nowMs();
    const elapsed = now - this.#windowStartMs;
    if (elapsed >= 1000) {
      this.#rate = elapsed >= 2000 ? 0 : (this.#count * 1000) / elapsed;
      this.#count = 0;
      this.#windowStartMs = now;
    }
  }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });

/** Builds the sweep over the store and a coordinator client, with its /metrics. */
export function createFragmentGc(
  config: StorageNodeConfig,
  store: ExtentStore,
  registry: Registry,
  log: Logger,
  nowMs: () => number,
  rate: RequestRate,
): { gc: FragmentGc; close(): Promise<void> } {
  const client = new CoordinatorClient(config.coordinators, { attemptsMax: 4, deadlineMs: 10_000 });
  const gc = new FragmentGc(
    { nodeId: config.nodeId, graceMs: config.gc.graceMs, intervalMs: config.gc.intervalMs, batchSize: config.gc.batchSize, checksPerSecondMax: config.gc.checksPerSecondMax },
    {
      store,
      identity: fileIdentityStore(config.dataDir),
      nowMs,
      sleep,
      busy: () => config.gc.busyRequestsPerSecond > 0 && rate.perSecond() > config.gc.busyRequestsPerSecond,
      logger: log,
      check: async (fragments, signal) => {
        const res = await client.call(
          'checkFragments',
          { nodeId: config.nodeId, fragments: fragments.map((f) => ({ namespace: f.namespace, key: Buffer.from(f.key), version: f.version.toString(), index: f.index })) },
          { signal },
        );
        return { liveness: res.liveness.map((l) => LIVENESS[l] ?? 'unknown'), nodeRegisteredAtMs: Number(res.nodeRegisteredAtMs) };
      },
    },
  );
  new Gauge({
    name: 'tw_storage_gc_fragments_total',
    help: 'Fragments seen by the garbage-collection sweep, by outcome (scanned, young, checked, live, dead, unknown, deleted, raced, undecodable)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const c = gc.counters();
      for (const k of ['scanned', 'young', 'undecodable', 'checked', 'live', 'dead', 'unknown', 'deleted', 'raced'] as const) this.set({ outcome: k }, c[k]);
    },
  });
  new Gauge({ name: 'tw_storage_gc_deleted_bytes_total', help: 'Fragment bytes the sweep deleted', registers: [registry], collect() { this.set(gc.counters().deletedBytes); } });
  new Gauge({
    name: 'tw_storage_gc_passes_total',
    help: 'Sweeps run, by result (ok, aborted)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const c = gc.counters();
      this.set({ result: 'ok' }, c.passes - c.passesAborted);
      this.set({ result: 'aborted' }, c.passesAborted);
    },
  });
  new Gauge({ name: 'tw_storage_gc_disabled', help: '1 when the sweep refuses to run (identity mismatch; see the log)', registers: [registry], collect() { this.set(gc.disabled === undefined ? 0 : 1); } });
  return {
    gc,
    async close() {
      await gc.stop();
      client.close();
    },
  };
}
