/**
 * The one file that loads the ISA-L addon (src/native/tw-isal.c, built by `node-gyp rebuild`
 * into build/Release/tw_isal.node) and turns its native error codes into TwErrors.
 *
 * libisal exports a `gf_mul` and so does the node binary (OpenSSL's, another signature); with a
 * plain dlopen libisal's own matrix code binds to node's and segfaults. RTLD_DEEPBIND puts the
 * addon's own dependencies (libisal) ahead of the global scope, so libisal calls its own.
 */
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { TwError } from '@tw/errors';
import { type IsalErrorCode, isalErrors } from './errors.js';
import { POOL_FREE_MAX_BYTES, POOL_MIN_BYTES } from './limits.js';

/** An RS(k, m) codec held by the addon (generator matrix and encode tables). */
export interface IsalContext {
  readonly __brand: 'IsalContext';
}

export interface IsalBinding {
  readonly K_MAX: number;
  readonly M_MAX: number;
  create(k: number, m: number): IsalContext;
  /** The (k + m) x k generator matrix, row-major. */
  matrix(ctx: IsalContext): Buffer;
  /**
   * Computes fragments `outIndexes` into `outs` from the k fragments `srcIndexes` held in `srcs`,
   * on libuv's thread pool. All buffers have the same nonzero length; outputs overlap nothing.
   */
  run(
    ctx: IsalContext,
    srcIndexes: readonly number[],
    srcs: readonly Uint8Array[],
    outIndexes: readonly number[],
    outs: readonly Uint8Array[],
    callback: (error: Error | undefined) => void,
  ): void;
  /** Checks libisal's matrices and one encode against the addon's own GF(2^8) arithmetic. */
  selfTest(): boolean;
  /** An uninitialised Buffer whose memory returns to the addon's pool when V8 collects it. */
  alloc(bytes: number): Buffer;
  /** Bounds the free bytes the pool keeps; returns the previous bound. */
  poolConfigure(maxBytes: number): number;
  poolStats(): IsalPoolStats;
}

export interface IsalPoolStats {
  /** Blocks and bytes held free for reuse. */
  readonly freeBlocks: number;
  readonly freeBytes: number;
  readonly maxBytes: number;
  /** Allocations served from the pool, and from libc. */
  readonly hits: number;
  readonly misses: number;
}

export const ADDON_URL = new URL('../build/Release/tw_isal.node', import.meta.url);

type LoadResult = { readonly binding: IsalBinding } | { readonly error: TwError };

/** Loads the addon at `url`; never throws. Exported for tests of the unavailable path. */
export function tryLoadIsal(url: URL): LoadResult {
  const dl = constants.dlopen as Partial<Record<'RTLD_NOW' | 'RTLD_DEEPBIND', number>>;
  const module = { exports: {} as unknown };
  try {
    process.dlopen(module, fileURLToPath(url), (dl.RTLD_NOW ?? 0) | (dl.RTLD_DEEPBIND ?? 0));
  } catch (err) {
    return {
      error: isalErrors.create('TW_ISAL_UNAVAILABLE', `cannot load the ISA-L addon ${fileURLToPath(url)}: build it with \`node-gyp rebuild\` in libs/erasure-isal (needs libisal-dev)`, {
        cause: err,
      }),
    };
  }
  const binding = module.exports as IsalBinding;
  let ok = false;
  let cause: unknown;
  try {
    ok = typeof binding.selfTest === 'function' && binding.selfTest();
  } catch (err) {
    cause = err;
  }
  if (!ok) return { error: isalErrors.create('TW_ISAL_UNAVAILABLE', 'the ISA-L addon loaded but failed its self-test: libisal gave wrong Reed-Solomon matrices', { cause }) };
  binding.poolConfigure(POOL_FREE_MAX_BYTES);
  return { binding };
}

let loaded: LoadResult | undefined;

function load(): LoadResult {
  loaded ??= tryLoadIsal(ADDON_URL);
  return loaded;
}

/** True when the addon is built, libisal is present and the self-test passed. Never throws. */
export function isalAvailable(): boolean {
  return 'binding' in load();
}

/** The addon; throws TW_ISAL_UNAVAILABLE when it cannot be used. */
export function isal(): IsalBinding {
  const r = load();
  if ('error' in r) throw r.error;
  return r.binding;
}

const NATIVE_CODES: Readonly<Record<string, IsalErrorCode>> = {
  ISAL_BAD_ARGUMENT: 'TW_ISAL_BAD_ARGUMENT',
  ISAL_NO_MEMORY: 'TW_ISAL_NO_MEMORY',
  ISAL_SINGULAR: 'TW_ISAL_CODEC',
  ISAL_CANCELLED: 'TW_ISAL_CODEC',
};

/** Turns an error thrown or reported by the addon into a TwError of this package. */
export function fromNative(err: unknown, what: string): TwError {
  const nativeCode = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const code = (nativeCode === undefined ? undefined : NATIVE_CODES[nativeCode]) ?? 'TW_ISAL_CODEC';
  const message = err instanceof Error ? err.message : String(err);
  return isalErrors.create(code, `ISA-L ${what}: ${message}`, { cause: err, details: { nativeCode: nativeCode ?? null } });
}

/** `create` with native errors mapped. */
export function isalCreate(k: number, m: number): IsalContext {
  const binding = isal();
  try {
    return binding.create(k, m);
  } catch (err) {
    throw fromNative(err, `create(${k}, ${m})`);
  }
}

/** `run` as a promise, with native errors (thrown or reported) mapped. */
export function isalRun(ctx: IsalContext, srcIndexes: readonly number[], srcs: readonly Uint8Array[], outIndexes: readonly number[], outs: readonly Uint8Array[]): Promise<void> {
  const binding = isal();
  return new Promise((resolve, reject) => {
    try {
      binding.run(ctx, srcIndexes, srcs, outIndexes, outs, (error) => {
        if (error) reject(fromNative(error, 'coding failed'));
        else resolve();
      });
    } catch (err) {
      reject(fromNative(err, 'refused the coding job'));
    }
  });
}

/**
 * An uninitialised buffer for coding output. Large ones come from the addon's pool (memory
 * already faulted in, returned when V8 collects the buffer); small ones from Node's allocator.
 */
export function allocCodingBuffer(bytes: number): Buffer {
  if (bytes < POOL_MIN_BYTES) return Buffer.allocUnsafe(bytes);
  try {
    return isal().alloc(bytes);
  } catch (err) {
    throw fromNative(err, `alloc(${bytes})`);
  }
}

/** Counters of the addon's buffer pool (for metrics). Throws TW_ISAL_UNAVAILABLE without it. */
export function isalPoolStats(): IsalPoolStats {
  return isal().poolStats();
}
