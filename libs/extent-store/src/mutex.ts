/** A FIFO async mutex (promise chain). */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Admission control by count and bytes, with AbortSignal support; waiters are served FIFO. */
export class Admission {
  #count = 0;
  #bytes = 0;
  #waiters: { bytes: number; resolve: () => void; reject: (err: unknown) => void; cleanup: () => void }[] = [];

  constructor(
    readonly countMax: number,
    readonly bytesMax: number,
  ) {}

  async acquire(bytes: number, signal: AbortSignal | undefined, abortError: () => unknown): Promise<void> {
    if (this.#waiters.length === 0 && this.#fits(bytes)) {
      this.#take(bytes);
      return;
    }
    if (signal?.aborted) throw abortError();
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(abortError());
        this.#pump();
      };
      const w = {
        bytes,
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(w);
    });
  }

  release(bytes: number): void {
    this.#count--;
    this.#bytes -= bytes;
    this.#pump();
  }

  /** Rejects every waiter (closing). */
  rejectAll(err: unknown): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) {
      w.cleanup();
      w.reject(err);
    }
  }

  #fits(bytes: number): boolean {
    // One oversized request is let through alone so it cannot starve.
    return this.#count < this.countMax && (this.#bytes + bytes <= this.bytesMax || this.#count === 0);
  }

  #take(bytes: number): void {
    this.#count++;
    this.#bytes += bytes;
  }

  #pump(): void {
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.bytes)) {
      const w = this.#waiters.shift()!;
      this.#take(w.bytes);
      w.cleanup();
      w.resolve();
    }
  }
}
