import { timingSafeEqual } from 'node:crypto';
import type { GatewayConfig } from './config.js';
import { gatewayAppErrors } from './errors.js';

/** Whether `address` (a socket's remoteAddress) is a loopback address. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Who may use which namespace: a namespace with a configured token needs it; the default
 * namespace without a token is open to loopback clients (or all, or none, per config); any other
 * namespace is refused.
 */
export class AccessPolicy {
  readonly defaultNamespace: string;
  readonly #open: GatewayConfig['openDefaultNamespace'];
  readonly #tokens: Map<string, string>;

  constructor(config: Pick<GatewayConfig, 'defaultNamespace' | 'openDefaultNamespace' | 'namespaces'>) {
    this.defaultNamespace = config.defaultNamespace;
    this.#open = config.openDefaultNamespace;
    this.#tokens = new Map();
    const seen = new Set<string>();
    for (const [ns, spec] of Object.entries(config.namespaces)) {
      if (spec.token === undefined) continue;
      if (seen.has(spec.token)) throw gatewayAppErrors.create('TW_GATEWAY_APP_CONFIG', `namespaces: two namespaces share one token (${ns} and another); give each its own`);
      seen.add(spec.token);
      this.#tokens.set(ns, spec.token);
    }
  }

  /** True when some namespace has a token. */
  get hasTokens(): boolean {
    return this.#tokens.size > 0;
  }

  /** May a client from `remote` use `namespace` without a token? */
  openTo(namespace: string, remote: string | undefined): boolean {
    if (this.#tokens.has(namespace) || namespace !== this.defaultNamespace) return false;
    return this.#open === 'all' || (this.#open === 'loopback' && isLoopback(remote));
  }

  /** True when `token` opens `namespace` (or the namespace is open to `remote`). */
  allows(namespace: string, token: string | null, remote: string | undefined): boolean {
    const expected = this.#tokens.get(namespace);
    if (expected !== undefined) return token !== null && sameToken(token, expected);
    return this.openTo(namespace, remote);
  }

  /** The namespace whose token this is (RESP's one-argument AUTH), or null. */
  namespaceOfToken(token: string): string | null {
    for (const [ns, t] of this.#tokens) if (sameToken(t, token)) return ns;
    return null;
  }

  /** Throws TW_GATEWAY_APP_UNAUTHORIZED unless allowed. */
  check(namespace: string, token: string | null, remote: string | undefined): void {
    if (!this.allows(namespace, token, remote)) {
      throw gatewayAppErrors.create('TW_GATEWAY_APP_UNAUTHORIZED', token === null ? `namespace ${namespace} needs a token` : `the token does not open namespace ${namespace}`, {
        details: { namespace },
      });
    }
  }
}
