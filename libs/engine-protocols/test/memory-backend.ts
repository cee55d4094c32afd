import type { RespAuthOutcome, RespBackend, RespBulkValue, RespSetOptions, RespSetOutcome } from '../src/index.js';

/**
 * A RespBackend over a Map with Redis's semantics, for tests and the differential check against
 * redis-server. `password` null: open, like Redis's default user without a password.
 */
export class MemoryBackend implements RespBackend {
  readonly data = new Map<string, { value: Buffer; expireAtMs: number | null }>();
  authenticated: boolean;
  nowMsValue = 1_700_000_000_000;

  constructor(readonly password: string | null = null) {
    this.authenticated = password === null;
  }

  authRequired(): boolean {
    return !this.authenticated;
  }

  async auth(username: Buffer | null, password: Buffer): Promise<RespAuthOutcome> {
    // Like Redis's default user without a password: open, and only the user "default" exists.
    if (this.password === null) return username === null || username.toString('latin1') === 'default' ? 'no-password' : 'wrongpass';
    const userOk = username === null || username.toString('latin1') === 'default';
    if (userOk && password.toString('latin1') === this.password) {
      this.authenticated = true;
      return 'ok';
    }
    return 'wrongpass';
  }

  nowMs(): number {
    return this.nowMsValue;
  }

  private live(key: Buffer): Buffer | null {
    const k = key.toString('latin1');
    const e = this.data.get(k);
    if (e === undefined) return null;
    if (e.expireAtMs !== null && e.expireAtMs <= this.nowMsValue) {
      this.data.delete(k);
      return null;
    }
    return e.value;
  }

  async get(key: Buffer, _signal?: AbortSignal): Promise<RespBulkValue | null> {
    return this.live(key);
  }

  async set(key: Buffer, value: Buffer, options: RespSetOptions): Promise<RespSetOutcome> {
    const previous = this.live(key);
    const k = key.toString('latin1');
    if ((options.condition === 'nx' && previous !== null) || (options.condition === 'xx' && previous === null)) {
      return { written: false, previous };
    }
    const old = this.data.get(k);
    const expireAtMs = options.keepTtl ? (old?.expireAtMs ?? null) : options.expireAtMs;
    this.data.set(k, { value: Buffer.from(value), expireAtMs });
    this.live(key);
    return { written: true, previous };
  }

  async exists(keys: readonly Buffer[]): Promise<number> {
    let n = 0;
    for (const k of keys) if (this.live(k) !== null) n++;
    return n;
  }

  async del(keys: readonly Buffer[]): Promise<number> {
    let n = 0;
    for (const k of keys) {
      if (this.live(k) !== null) {
        this.data.delete(k.toString('latin1'));
        n++;
      }
    }
    return n;
  }

  async mget(keys: readonly Buffer[]): Promise<(RespBulkValue | null)[]> {
    return keys.map((k) => this.live(k));
  }
}
