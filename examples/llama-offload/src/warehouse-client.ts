import { type TwClient, connectClient } from '@tw/client';
import { isTwError } from '@tw/errors';
import { llamaOffloadErrors } from './errors.js';

/** What KvOffload needs of the warehouse: two clients implement it (native and HTTP). */
export interface Warehouse {
  /** Stores a value; `sync` waits until the block is committed in the cluster. */
  put(key: string, value: Uint8Array, o?: { mode?: 'sync' | 'async'; signal?: AbortSignal }): Promise<void>;
  /**
   * The value, or undefined when absent. With `into` (a client that can use it): the value is
   * read into it when it fits and is a view of it; otherwise it lands in a new buffer.
   */
  get(key: string, o?: { signal?: AbortSignal; into?: Buffer }): Promise<Buffer | undefined>;
  delete(key: string, o?: { signal?: AbortSignal }): Promise<boolean>;
  /** How many leading keys are stored (one round trip). */
  lookupPrefix(keys: readonly string[], o?: { prefetch?: boolean; signal?: AbortSignal }): Promise<number>;
  /**
   * Where the gateway can write values into files for this process (a client on the gateway's
   * host: `deliver`), or undefined when it cannot.
   */
  readonly deliveryDir?: string | undefined;
  /**
   * Has the gateway write the value's last `tailBytes` bytes into `file` (a plain name in
   * deliveryDir, created by the caller) as `scatter` says; resolves with the value's head and the
   * tail's xxh64, or undefined when the value is absent.
   */
  deliver?(key: string, o: DeliverOptions): Promise<{ valueBytes: number; head: Buffer; tailChecksum: bigint } | undefined>;
  close?(): Promise<void>;
}

export interface DeliverOptions {
  readonly file: string;
  readonly tailBytes: number;
  readonly scatter: readonly { readonly tailOffset: number; readonly bytes: number; readonly fileOffset: number }[];
  readonly signal?: AbortSignal;
}

export interface WarehouseClientOptions {
  /** The gateway's HTTP base, e.g. http://127.0.0.1:7300. */
  readonly url: string;
  readonly namespace?: string;
  readonly token?: string;
  readonly timeoutMs?: number;
}

/** The gateway's HTTP API for blocks (apps/gateway/README.md): PUT / GET / HEAD / DELETE and lookup-prefix. */
export class WarehouseClient implements Warehouse {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(o: WarehouseClientOptions) {
    this.#base = `${o.url.replace(/\/$/, '')}/v1/namespaces/${encodeURIComponent(o.namespace ?? 'default')}`;
    this.#headers = o.token === undefined ? {} : { authorization: `Bearer ${o.token}` };
    this.#timeoutMs = o.timeoutMs ?? 60_000;
  }

  #signal(signal?: AbortSignal): AbortSignal {
    const t = AbortSignal.timeout(this.#timeoutMs);
    return signal === undefined ? t : AbortSignal.any([signal, t]);
  }

  async #fail(op: string, key: string, res: Response): Promise<never> {
    const body = await res.text().catch(() => '');
    throw llamaOffloadErrors.create('TW_LLAMA_WAREHOUSE', `${op} ${key.slice(0, 80)}: HTTP ${res.status} ${body.slice(0, 200)}`);
  }

  async #fetch(url: string, init: RequestInit, op: string): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (err) {
      throw llamaOffloadErrors.create('TW_LLAMA_WAREHOUSE', `${op}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Stores a value; `sync` waits until the block is committed in the cluster. */
  async put(key: string, value: Uint8Array, o: { mode?: 'sync' | 'async'; signal?: AbortSignal } = {}): Promise<void> {
    const res = await this.#fetch(`${this.#base}/blocks/${encodeURIComponent(key)}?mode=${o.mode ?? 'sync'}`, { method: 'PUT', body: value, headers: { ...this.#headers, 'content-type': 'application/octet-stream' }, signal: this.#signal(o.signal) }, 'put');
    if (res.status !== 201 && res.status !== 202) await this.#fail('put', key, res);
    await res.arrayBuffer();
  }

  /** The value, or undefined when absent. */
  async get(key: string, o: { signal?: AbortSignal } = {}): Promise<Buffer | undefined> {
    const res = await this.#fetch(`${this.#base}/blocks/${encodeURIComponent(key)}`, { headers: this.#headers, signal: this.#signal(o.signal) }, 'get');
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    if (res.status !== 200) await this.#fail('get', key, res);
    // A cut-off body either fails here or arrives short and decodeBlock refuses it.
    try {
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw llamaOffloadErrors.create('TW_LLAMA_WAREHOUSE', `get ${key.slice(0, 80)}: the body did not arrive whole: ${(err as Error).message}`, { cause: err });
    }
  }

  async delete(key: string, o: { signal?: AbortSignal } = {}): Promise<boolean> {
    const res = await this.#fetch(`${this.#base}/blocks/${encodeURIComponent(key)}`, { method: 'DELETE', headers: this.#headers, signal: this.#signal(o.signal) }, 'delete');
    await res.arrayBuffer();
    if (res.status === 404) return false;
    if (res.status !== 204) await this.#fail('delete', key, res);
    return true;
  }

  /** How many leading keys are stored (one round trip). */
  async lookupPrefix(keys: readonly string[], o: { prefetch?: boolean; signal?: AbortSignal } = {}): Promise<number> {
    if (keys.length === 0) return 0;
    const res = await this.#fetch(`${this.#base}/lookup-prefix`, { method: 'POST', body: JSON.stringify({ keys, prefetch: o.prefetch ?? false }), headers: { ...this.#headers, 'content-type': 'application/json' }, signal: this.#signal(o.signal) }, 'lookup-prefix');
    if (res.status !== 200) await this.#fail('lookup-prefix', keys[0]!, res);
    const j = (await res.json()) as { hits?: unknown };
    if (typeof j.hits !== 'number' || j.hits < 0 || j.hits > keys.length) throw llamaOffloadErrors.create('TW_LLAMA_WAREHOUSE', `lookup-prefix answered ${JSON.stringify(j)}`);
    return j.hits;
  }
}

/**
 * The gateway's native protocol (@tw/client): values travel as transport payloads over a pool of
 * connections and GETs land in a buffer of the value's size, where the HTTP path goes through
 * fetch's body stream. This is what restores use by default.
 */
export class NativeWarehouse implements Warehouse {
  private constructor(readonly client: TwClient) {}

  static async connect(o: { address: string; namespace?: string; token?: string; signal?: AbortSignal }): Promise<NativeWarehouse> {
    try {
      return new NativeWarehouse(await connectClient({ address: o.address, namespace: o.namespace ?? 'default', ...(o.token === undefined ? {} : { token: o.token }), ...(o.signal === undefined ? {} : { signal: o.signal }) }));
    } catch (err) {
      throw wrap('connect', o.address, err);
    }
  }

  async put(key: string, value: Uint8Array, o: { mode?: 'sync' | 'async'; signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.client.put(key, value, { mode: o.mode ?? 'sync', ...(o.signal === undefined ? {} : { signal: o.signal }) });
    } catch (err) {
      throw wrap('put', key, err);
    }
  }

  async get(key: string, o: { signal?: AbortSignal; into?: Buffer } = {}): Promise<Buffer | undefined> {
    const signal = o.signal === undefined ? {} : { signal: o.signal };
    try {
      if (o.into !== undefined) {
        try {
          return (await this.client.get(key, { ...signal, into: o.into })) ?? undefined;
        } catch (err) {
          // A value larger than the caller's buffer: read it into one of its own instead.
          if (!isTwError(err, 'TW_TRANSPORT_DESTINATION_TOO_SMALL')) throw err;
        }
      }
      return (await this.client.get(key, signal)) ?? undefined;
    } catch (err) {
      throw wrap('get', key, err);
    }
  }

  get deliveryDir(): string | undefined {
    return this.client.deliveryDir === '' ? undefined : this.client.deliveryDir;
  }

  async deliver(key: string, o: DeliverOptions): Promise<{ valueBytes: number; head: Buffer; tailChecksum: bigint } | undefined> {
    try {
      return await this.client.deliver(key, { file: o.file, tailBytes: o.tailBytes, scatter: o.scatter, ...(o.signal === undefined ? {} : { signal: o.signal }) });
    } catch (err) {
      throw wrap('deliver', key, err);
    }
  }

  async delete(key: string, o: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      return await this.client.delete(key, o.signal === undefined ? {} : { signal: o.signal });
    } catch (err) {
      throw wrap('delete', key, err);
    }
  }

  async lookupPrefix(keys: readonly string[], o: { prefetch?: boolean; signal?: AbortSignal } = {}): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      const r = await this.client.lookupPrefix(keys, { prefetch: o.prefetch ?? false, ...(o.signal === undefined ? {} : { signal: o.signal }) });
      return r.hits;
    } catch (err) {
      throw wrap('lookup-prefix', keys[0]!, err);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

function wrap(op: string, key: string, err: unknown): Error {
  const code = isTwError(err) ? ` (${err.code})` : '';
  return llamaOffloadErrors.create('TW_LLAMA_WAREHOUSE', `${op} ${key.slice(0, 80)}: ${(err as Error).message}${code}`, { cause: err });
}
