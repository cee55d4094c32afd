import type { RespBulkValue } from './resp-reply.js';

/**
 * Answer of an authentication: `ok`; `wrongpass` (bad token or user: Redis's -WRONGPASS);
 * `no-password` (nothing to authenticate against: the connection is open, as Redis's default
 * user without a password; `AUTH <password>` then answers Redis's "called without any password
 * configured" error, `AUTH <user> <password>` and `HELLO ... AUTH` answer OK).
 */
export type RespAuthOutcome = 'ok' | 'wrongpass' | 'no-password';

/** SET's options once parsed and checked the way Redis does. */
export interface RespSetOptions {
  /** `always`, or NX (only if absent) / XX (only if present). */
  readonly condition: 'always' | 'nx' | 'xx';
  /** GET option: the reply is the previous value, so the backend must return it. */
  readonly returnPrevious: boolean;
  /** Absolute expiry in Unix milliseconds (EX/PX resolved with `nowMs()`; EXAT/PXAT as given); null: none. */
  readonly expireAtMs: number | null;
  /** KEEPTTL: keep the key's current expiry. */
  readonly keepTtl: boolean;
}

export interface RespSetOutcome {
  /** False when NX/XX stopped the write. */
  readonly written: boolean;
  /** The value before the write (only needed when `returnPrevious`); null when absent. */
  readonly previous: RespBulkValue | null;
}

/**
 * What the RESP front-end needs from the gateway, for one connection (authentication is per
 * connection, as in Redis). Keys and values are bytes. Every method may reject with a coded
 * TwError; the dispatcher turns it into an `-ERR` reply and keeps the connection open, except
 * for TW_RESP_ABORTED. Values may be handed out as pieces; the dispatcher writes them unjoined.
 */
export interface RespBackend {
  /** True while this connection must still authenticate before data commands (-NOAUTH). */
  authRequired(): boolean;
  /** AUTH / HELLO AUTH; `username` null for the one-argument form. */
  auth(username: Buffer | null, password: Buffer, signal: AbortSignal): Promise<RespAuthOutcome>;
  /** The current time, Unix milliseconds, to resolve SET EX/PX into an absolute expiry. */
  nowMs(): number;
  /** GET: the value, or null when absent. A key is present only once its bytes can be served. */
  get(key: Buffer, signal: AbortSignal): Promise<RespBulkValue | null>;
  set(key: Buffer, value: Buffer, options: RespSetOptions, signal: AbortSignal): Promise<RespSetOutcome>;
  /** EXISTS: how many of `keys` exist, a key named twice counted twice (Redis's rule). */
  exists(keys: readonly Buffer[], signal: AbortSignal): Promise<number>;
  /** DEL: how many keys were removed (a key named twice removed once). */
  del(keys: readonly Buffer[], signal: AbortSignal): Promise<number>;
  /** MGET: one entry per key, in order, null where absent. */
  mget(keys: readonly Buffer[], signal: AbortSignal): Promise<(RespBulkValue | null)[]>;
}

/** Per-connection state Redis keeps and the front-end answers from (CLIENT, HELLO). */
export class RespSession {
  /** Connection id (CLIENT ID, HELLO's `id`). */
  readonly clientId: number;
  name: Buffer | null = null;
  libName: Buffer | null = null;
  libVersion: Buffer | null = null;

  constructor(clientId: number) {
    this.clientId = clientId;
  }
}
