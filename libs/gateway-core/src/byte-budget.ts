import { assert } from '@tw/errors';
import { gatewayErrors } from './errors.js';
import { BYTE_WAITERS_MAX } from './limits.js';

interface Waiter {
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * A budget of bytes with FIFO, abortable waiters: back-pressure without unbounded buffering.
 * `acquire` resolves once `bytes` fit (a request larger than the whole budget is admitted when
 * nothing else is held, so it can never deadlock). `release` returns bytes. `reclaim` is an
 * optional callback the budget calls before it makes a caller wait (the DRAM tier evicts there).
 */
export class ByteBudget {
  #used = 0;
  readonly #waiters: Waiter[] = [];

  constructor(
    readonly capacityBytes: number,
    private readonly reclaim?: (neededBytes: number) => void,
  ) {}

  get usedBytes(): number {
    return this.#used;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  #fits(bytes: number): boolean {
    return this.#used + bytes <= this.capacityBytes || this.#used === 0;
  }

  /** Takes `bytes` at once if they fit (after reclaiming), else returns false. */
  tryAcquire(bytes: number): boolean {
    if (this.#waiters.length > 0) return false;
    if (!this.#fits(bytes) && this.reclaim !== undefined) this.reclaim(this.#used + bytes - this.capacityBytes);
    if (!this.#fits(bytes)) return false;
    this.#used += bytes;
    return true;
  }

  /** Waits (FIFO, abortably) until `bytes` fit, then takes them. */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, 'byte budget: bad byte count');
    if (signal?.aborted) return Promise.reject(aborted(signal));
    if (this.tryAcquire(bytes)) return Promise.resolve();
    if (this.#waiters.length >= BYTE_WAITERS_MAX) {
      return Promise.reject(gatewayErrors.create('TW_GATEWAY_VALUE_TOO_LARGE', `too many callers (${BYTE_WAITERS_MAX}) wait for gateway memory`));
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(aborted(signal!));
        this.#wake();
      };
      const waiter: Waiter = { bytes, resolve, reject, signal, onAbort };
      this.#waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.#used, () => `byte budget: releasing ${bytes} of ${this.#used} held`);
    this.#used -= bytes;
    this.#wake();
  }

  /** Returns bytes without waking waiters (for the reclaim callback, which runs inside a decision). */
  releaseQuietly(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.#used, () => `byte budget: releasing ${bytes} of ${this.#used} held`);
    this.#used -= bytes;
  }

  /** Re-examines the waiters (call after something became reclaimable). */
  poke(): void {
    this.#wake();
  }

  #wake(): void {
    for (;;) {
      const w = this.#waiters[0];
      if (w === undefined) return;
      if (!this.#fits(w.bytes) && this.reclaim !== undefined) this.reclaim(this.#used + w.bytes - this.capacityBytes);
      if (!this.#fits(w.bytes)) return;
      this.#waiters.shift();
      w.signal?.removeEventListener('abort', w.onAbort);
      this.#used += w.bytes;
      w.resolve();
    }
  }

  /** Rejects every waiter (on close). */
  failAll(err: Error): void {
    for (const w of this.#waiters.splice(0)) {
      w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(err);
    }
  }
}

export function aborted(signal: AbortSignal): Error {
  return gatewayErrors.create('TW_GATEWAY_ABORTED', 'gateway call aborted', { cause: signal.reason });
}
