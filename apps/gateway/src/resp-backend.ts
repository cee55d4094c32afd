import type { RespAuthOutcome, RespBackend, RespBulkValue, RespSetOptions, RespSetOutcome } from '@tw/engine-protocols';
import type { Gateway } from '@tw/gateway-core';
import type { AccessPolicy } from './access.js';

/**
 * The RESP front-end's view of the gateway for one connection: its namespace (null until AUTH
 * when the default namespace is not open to this client), and the Redis commands mapped onto
 * put / get / mget / lookupPrefix / delete.
 */
export class GatewayRespBackend implements RespBackend {
  namespace: string | null;

  constructor(
    private readonly gateway: Gateway,
    private readonly access: AccessPolicy,
    private readonly remote: string | undefined,
    private readonly putMode: 'async' | 'sync',
  ) {
    this.namespace = access.openTo(access.defaultNamespace, remote) ? access.defaultNamespace : null;
  }

  authRequired(): boolean {
    return this.namespace === null;
  }

  async auth(username: Buffer | null, password: Buffer, signal?: AbortSignal): Promise<RespAuthOutcome> {
    const token = password.toString('utf8');
    const user = username === null ? null : username.toString('utf8');
    if (user === null || user === 'default') {
      const ns = this.access.namespaceOfToken(token);
      if (ns !== null) {
        this.namespace = ns;
        return 'ok';
      }
      // Like Redis without a password: an open connection with nothing to authenticate against.
      if (!this.access.hasTokens && this.namespace !== null) return 'no-password';
      return 'wrongpass';
    }
    // AUTH <namespace> <token>.
    if (await this.access.allows(user, token, this.remote, signal)) {
      this.namespace = user;
      return 'ok';
    }
    return 'wrongpass';
  }

  nowMs(): number {
    return Date.now();
  }

  #ns(): string {
    // dispatch() answers -NOAUTH before data commands while authRequired(): never null here.
    return this.namespace ?? this.access.defaultNamespace;
  }

  async get(key: Buffer, signal: AbortSignal): Promise<RespBulkValue | null> {
    return (await this.gateway.get(this.#ns(), key, { signal })) ?? null;
  }

  async #present(key: Buffer, signal: AbortSignal): Promise<boolean> {
    return (await this.gateway.lookupPrefix(this.#ns(), [key], { signal })).hits === 1;
  }

  async set(key: Buffer, value: Buffer, options: RespSetOptions, signal: AbortSignal): Promise<RespSetOutcome> {
    let previous: RespBulkValue | null = null;
    if (options.returnPrevious) previous = (await this.gateway.get(this.#ns(), key, { signal })) ?? null;
    if (options.condition !== 'always') {
      const present = options.returnPrevious ? previous !== null : await this.#present(key, signal);
      if ((options.condition === 'nx' && present) || (options.condition === 'xx' && !present)) return { written: false, previous };
    }
    // KEEPTTL keeps no TTL here (values carry their namespace's TTL); EX/PX/EXAT/PXAT become a TTL.
    let ttlMs = 0;
    if (options.expireAtMs !== null) {
      ttlMs = options.expireAtMs - this.nowMs();
      if (ttlMs <= 0) {
        // Redis stores and at once expires it: the key is gone.
        await this.gateway.delete(this.#ns(), key, { signal });
        return { written: true, previous };
      }
    }
    await this.gateway.put(this.#ns(), key, value, { mode: this.putMode, signal, ...(ttlMs > 0 ? { ttlMs: Math.ceil(ttlMs) } : {}) });
    return { written: true, previous };
  }

  async exists(keys: readonly Buffer[], signal: AbortSignal): Promise<number> {
    const found = await Promise.all(keys.map((k) => this.#present(k, signal)));
    return found.filter(Boolean).length;
  }

  async del(keys: readonly Buffer[], signal: AbortSignal): Promise<number> {
    const unique = new Map<string, Buffer>();
    for (const k of keys) unique.set(k.toString('latin1'), k);
    const deleted = await Promise.all([...unique.values()].map((k) => this.gateway.delete(this.#ns(), k, { signal })));
    return deleted.filter(Boolean).length;
  }

  async mget(keys: readonly Buffer[], signal: AbortSignal): Promise<(RespBulkValue | null)[]> {
    const values = await this.gateway.mget(this.#ns(), keys, { signal });
    return values.map((v) => v ?? null);
  }
}
