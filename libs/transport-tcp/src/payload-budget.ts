/**
 * Request payload bytes a listener holds: received (or being received) for requests whose
 * handlers have not finished. Connections stop reading new requests while their listener's total
 * is at `highBytes` (and while their own is at their bound), and a request whose payload would take
 * the total past `hardBytes` is refused at its header with TW_TRANSPORT_SERVER_BUSY. The hard
 * bound is what holds with thousands of connections, each of which may be mid-payload when the
 * total crosses `highBytes`.
 */
export class PayloadBudget {
  heldBytes = 0;
  readonly #belowHigh = new Set<() => void>();

  constructor(
    readonly highBytes: number,
    readonly hardBytes: number,
  ) {}

  get atHigh(): boolean {
    return this.heldBytes >= this.highBytes;
  }

  /** Whether a payload of `bytes` may be taken now: always when nothing is held (progress). */
  admits(bytes: number): boolean {
    return this.heldBytes === 0 || this.heldBytes + bytes <= this.hardBytes;
  }

  take(bytes: number): void {
    this.heldBytes += bytes;
  }

  release(bytes: number): void {
    const was = this.atHigh;
    this.heldBytes -= bytes;
    if (was && !this.atHigh) for (const f of [...this.#belowHigh]) f();
  }

  /** Calls `f` each time the total drops below `highBytes`; returns the unsubscribe. */
  onBelowHigh(f: () => void): () => void {
    this.#belowHigh.add(f);
    return () => this.#belowHigh.delete(f);
  }
}
