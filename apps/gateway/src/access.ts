import { timingSafeEqual } from 'node:crypto';
import type { GatewayConfig } from './config.js';
import { gatewayAppErrors } from './errors.js';
import type { NamespaceTokenCache } from './namespace-tokens.js';

/** Whether `address` (a socket's remoteAddress) is a loopback address. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

/** The shape of a namespace name (@tw/block-format's validateNamespace). */
const NAMESPACE_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Who may use which namespace, one policy for every front-end:
 * - a namespace with a token in the gateway config opens with that token;
 * - a namespace whose coordinators hold a token opens with that token (checked with the
 *   coordinators, cached; see NamespaceTokenCache), whether or not the config names it;
 * - the default namespace without a configured token is open to loopback clients (or all, or
 *   none, per config);
 * - anything else is refused.
 */
export class AccessPolicy {
  readonly defaultNamespace: string;
  readonly #open: GatewayConfig['openDefaultNamespace'];
  readonly #tokens: Map<string, string>;
  readonly #coordinatorTokens: NamespaceTokenCache | undefined;

  constructor(config: Pick<GatewayConfig, 'defaultNamespace' | 'openDefaultNamespace' | 'namespaces'>, coordinatorTokens?: NamespaceTokenCache) {
    this.defaultNamespace = config.defaultNamespace;
    this.#open = config.openDefaultNamespace;
    this.#tokens = new Map();
    this.#coordinatorTokens = coordinatorTokens;
    const seen = new Set<string>();
    for (const [ns, spec] of Object.entries(config.namespaces)) {
      if (spec.token === undefined) continue;
      if (seen.has(spec.token)) throw gatewayAppErrors.create('TW_GATEWAY_APP_CONFIG', `namespaces: two namespaces share one token (${ns} and another); give each its own`);
      seen.add(spec.token);
      this.#tokens.set(ns, spec.token);
    }
  }

  /** True when tokens may exist: some namespace has one in the config, or the coordinators are asked. */
  get hasTokens(): boolean {
    return this.#tokens.size > 0 || this.#coordinatorTokens !== undefined;
  }

  /** May a client from `remote` use `namespace` without a token? */
  openTo(namespace: string, remote: string | undefined): boolean {
    if (this.#tokens.has(namespace) || namespace !== this.defaultNamespace) return false;
    return this.#open === 'all' || (this.#open === 'loopback' && isLoopback(remote));
  }

  /**
   * The answer when it is known without asking the coordinators (config, open default namespace,
   * a fresh cached verdict), else undefined: call `allows`.
   */
  decide(namespace: string, token: string | null, remote: string | undefined): boolean | undefined {
    const expected = this.#tokens.get(namespace);
    if (expected !== undefined && token !== null && sameToken(token, expected)) return true;
    if (token === null || token === '') return expected === undefined && this.openTo(namespace, remote);
    if (this.#coordinatorTokens === undefined) return expected === undefined && this.openTo(namespace, remote);
    const cached = this.#coordinatorTokens.peek(namespace, token);
    if (cached === true) return true;
    if (cached === false) return expected === undefined && this.openTo(namespace, remote);
    return undefined;
  }

  /** True when `token` opens `namespace` (or the namespace is open to `remote`). */
  async allows(namespace: string, token: string | null, remote: string | undefined, signal?: AbortSignal): Promise<boolean> {
    const known = this.decide(namespace, token, remote);
    if (known !== undefined) return known;
    // Not a namespace name (e.g. a RESP AUTH user): nothing to ask the coordinators about.
    if (!NAMESPACE_RE.test(namespace)) return false;
    // decide() answers every case without a token or without coordinator tokens.
    if ((await this.#coordinatorTokens!.allows(namespace, token!, signal)) === true) return true;
    return !this.#tokens.has(namespace) && this.openTo(namespace, remote);
  }

  /** The namespace whose token this is (RESP's one-argument AUTH): config tokens and coordinator tokens already verified. */
  namespaceOfToken(token: string): string | null {
    for (const [ns, t] of this.#tokens) if (sameToken(t, token)) return ns;
    return this.#coordinatorTokens?.namespaceOfToken(token) ?? null;
  }

  /** A token that opens `namespace`, for the gateway's own coordinator calls ('' when none is known). */
  tokenFor(namespace: string): string {
    return this.#coordinatorTokens?.tokenFor(namespace) ?? this.#tokens.get(namespace) ?? '';
  }

  /** Throws TW_GATEWAY_APP_UNAUTHORIZED unless allowed (TW_GATEWAY_APP_TOKEN_CHECK_FAILED when the coordinators cannot say). */
  async check(namespace: string, token: string | null, remote: string | undefined, signal?: AbortSignal): Promise<void> {
    if (!(await this.allows(namespace, token, remote, signal))) throw this.refusal(namespace, token);
  }

  refusal(namespace: string, token: string | null): Error {
    return gatewayAppErrors.create('TW_GATEWAY_APP_UNAUTHORIZED', token === null || token === '' ? `namespace ${namespace} needs a token` : `the token does not open namespace ${namespace}`, {
      details: { namespace },
    });
  }
}
