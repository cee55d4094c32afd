/**
 * The error contract every package shares. Operating errors (bad input, disk, network) are
 * instances of {@link TwError} with a stable `code` that callers branch on; the message is for
 * humans and may change. Each package declares its codes once, in its own `errors.ts`, with
 * {@link defineErrors}; `docs/errors.md` lists every code and a test keeps the two in sync.
 *
 * Broken invariants are not TwErrors: they are {@link AssertionFailure}s and stay on in production.
 */

export interface ErrorSpec {
  /** One line for `docs/errors.md`: what happened and what the caller can do about it. */
  readonly description: string;
  /** Whether retrying the same operation later can succeed (network blips, leader changes). */
  readonly retryable?: boolean;
}

export class TwError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  /** Machine-readable context (field names, sizes, offsets); never contains payload bytes. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TwError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }

  toJSON(): { code: string; message: string; details?: Readonly<Record<string, unknown>> } {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
}

export type ErrorFactory = (message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) => TwError;

export interface ErrorCatalogue<C extends string> {
  /** Package that owns the codes, for the docs. */
  readonly owner: string;
  readonly specs: Readonly<Record<C, ErrorSpec>>;
  /** Builds an error of a declared code. */
  create(code: C, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }): TwError;
  /** True when `err` is a TwError carrying `code`. */
  is(err: unknown, code: C): err is TwError;
}

const registry = new Map<string, { owner: string; spec: ErrorSpec }>();

/** Declares a package's error codes. Codes are global: declaring one twice is a bug. */
export function defineErrors<C extends string>(owner: string, specs: Record<C, ErrorSpec>): ErrorCatalogue<C> {
  for (const [code, spec] of Object.entries(specs) as [string, ErrorSpec][]) {
    if (!/^TW_[A-Z0-9_]+$/.test(code)) throw new AssertionFailure(`error code ${code} must match TW_[A-Z0-9_]+`);
    const prior = registry.get(code);
    if (prior !== undefined && prior.owner !== owner) {
      throw new AssertionFailure(`error code ${code} declared by both ${prior.owner} and ${owner}`);
    }
    registry.set(code, { owner, spec });
  }
  return {
    owner,
    specs,
    create(code, message, options = {}) {
      const spec = specs[code];
      return new TwError(code, message, { ...options, retryable: spec.retryable ?? false });
    },
    is(err, code): err is TwError {
      return err instanceof TwError && err.code === code;
    },
  };
}

/** Every code declared so far in this process (by packages that were imported). */
export function declaredErrors(): ReadonlyMap<string, { owner: string; spec: ErrorSpec }> {
  return registry;
}

/** A broken invariant: a bug in our code, never caused by input. Always on. */
export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailure';
  }
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionFailure(typeof message === 'string' ? message : message());
}

/** True for any TwError; `code` narrows to one code. */
export function isTwError(err: unknown, code?: string): err is TwError {
  return err instanceof TwError && (code === undefined || err.code === code);
}
