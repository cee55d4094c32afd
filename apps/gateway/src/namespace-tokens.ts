import { createHash } from 'node:crypto';
import { isTwError } from '@tw/errors';
import { gatewayAppErrors } from './errors.js';

/**
 * What the coordinators say of (namespace, token): `valid` (the namespace has a token and this is
 * it), `invalid` (wrong token, a namespace without a token, or no such namespace). Throws when the
 * coordinators cannot answer (outage): the caller then keeps what it knew.
 */
export type TokenVerdict = 'valid' | 'invalid';
export type VerifyToken = (namespace: string, token: string, signal: AbortSignal | undefined) => Promise<TokenVerdict>;

export interface NamespaceTokenCacheOptions {
  /** How long a verdict is trusted before the coordinators are asked again (ms). */
  readonly ttlMs: number;
  /** Verdicts kept (least recently used dropped first). */
  readonly entriesMax: number;
  readonly nowMs?: () => number;
}

interface Entry {
  readonly namespace: string;
  readonly token: string;
  valid: boolean;
  checkedAtMs: number;
  refreshing: Promise<boolean> | undefined;
}

/**
 * Namespace tokens held by the coordinators, verified there and cached: a verdict is trusted for
 * `ttlMs`, then re-checked. When the coordinators cannot answer, a token that was valid stays
 * valid (an outage must not lock out namespaces already in use); one never seen valid is refused
 * with TW_GATEWAY_APP_TOKEN_CHECK_FAILED (retryable). Concurrent checks of one token share one call.
 */
export class NamespaceTokenCache {
  readonly #entries = new Map<string, Entry>();
  /** The last valid token of each namespace, for the gateway's own coordinator calls. */
  readonly #validByNamespace = new Map<string, string>();
  readonly #nowMs: () => number;

  constructor(
    private readonly verify: VerifyToken,
    private readonly options: NamespaceTokenCacheOptions,
  ) {
    this.#nowMs = options.nowMs ?? Date.now;
  }

  static #key(namespace: string, token: string): string {
    return `${namespace}\0${createHash('sha256').update(token, 'utf8').digest('base64')}`;
  }

  /** The cached verdict when still fresh, else undefined (ask `allows`). */
  peek(namespace: string, token: string): boolean | undefined {
    const e = this.#entries.get(NamespaceTokenCache.#key(namespace, token));
    if (e === undefined || this.#nowMs() - e.checkedAtMs >= this.options.ttlMs) return undefined;
    return e.valid;
  }

  /** The namespace a cached valid token opens (RESP's one-argument AUTH), or null. */
  namespaceOfToken(token: string): string | null {
    for (const [ns, t] of this.#validByNamespace) if (t === token) return ns;
    return null;
  }

  /** A token known valid for `namespace` (to pass on in the gateway's own coordinator calls). */
  tokenFor(namespace: string): string | undefined {
    return this.#validByNamespace.get(namespace);
  }

  get size(): number {
    return this.#entries.size;
  }

  async allows(namespace: string, token: string, signal?: AbortSignal): Promise<boolean> {
    const key = NamespaceTokenCache.#key(namespace, token);
    let e = this.#entries.get(key);
    if (e !== undefined) {
      // Most recently used last.
      this.#entries.delete(key);
      this.#entries.set(key, e);
      if (this.#nowMs() - e.checkedAtMs < this.options.ttlMs) return e.valid;
    } else {
      e = { namespace, token, valid: false, checkedAtMs: -Infinity, refreshing: undefined };
      this.#entries.set(key, e);
      while (this.#entries.size > this.options.entriesMax) {
        const oldest = this.#entries.keys().next().value as string;
        this.#entries.delete(oldest);
      }
    }
    const entry = e;
    entry.refreshing ??= this.#refresh(entry).finally(() => (entry.refreshing = undefined));
    if (signal === undefined) return entry.refreshing;
    return await new Promise<boolean>((resolve, reject) => {
      const onAbort = (): void => reject(gatewayAppErrors.create('TW_GATEWAY_APP_TOKEN_CHECK_FAILED', 'token check aborted', { cause: signal.reason }));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      entry.refreshing!.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async #refresh(e: Entry): Promise<boolean> {
    let verdict: TokenVerdict;
    try {
      verdict = await this.verify(e.namespace, e.token, undefined);
    } catch (err) {
      if (e.valid) return true; // stale but known good: keep serving through the outage
      throw gatewayAppErrors.create('TW_GATEWAY_APP_TOKEN_CHECK_FAILED', `cannot check the token of namespace ${e.namespace} with the coordinators: ${(err as Error).message}`, {
        cause: err,
        details: isTwError(err) ? { code: err.code } : {},
      });
    }
    e.valid = verdict === 'valid';
    e.checkedAtMs = this.#nowMs();
    if (e.valid) this.#validByNamespace.set(e.namespace, e.token);
    else if (this.#validByNamespace.get(e.namespace) === e.token) this.#validByNamespace.delete(e.namespace);
    // Bounded like the verdicts: a namespace leaves when it has no verdict left.
    if (this.#validByNamespace.size > this.options.entriesMax) {
      const oldest = this.#validByNamespace.keys().next().value as string;
      this.#validByNamespace.delete(oldest);
    }
    return e.valid;
  }
}

export interface TokenCheckCoordinator {
  call(method: 'verifyNamespaceToken', request: { namespace: string; token: string }, options?: { signal?: AbortSignal }): Promise<{ known: boolean; hasToken: boolean; valid: boolean }>;
}

/**
 * Verifies a token with the coordinators' VerifyNamespaceToken (they hold only a hash of each
 * namespace's token; the answer comes after a read barrier). A namespace without a token is not
 * opened by any coordinator token (only by the gateway config). Errors (outage) propagate.
 */
export function verifyWithCoordinators(coordinator: TokenCheckCoordinator): VerifyToken {
  return async (namespace, token, signal) => {
    if (token === '') return 'invalid';
    const r = await coordinator.call('verifyNamespaceToken', { namespace, token }, signal === undefined ? {} : { signal });
    return r.known && r.hasToken && r.valid ? 'valid' : 'invalid';
  };
}
