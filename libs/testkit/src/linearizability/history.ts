import { testkitErrors } from '../errors.js';
import type { Operation } from './model.js';

/**
 * Records a concurrent history as it happens, on a logical clock that ticks once per event, so
 * event order is exact and replayable. `invoke` before the request leaves the client, `complete`
 * when the answer arrives; operations still open at the end count as timed out (maybe applied).
 * `discard` removes an operation that definitely did not take effect.
 */
export class HistoryRecorder<I, O> {
  private clock = 0;
  private readonly open = new Map<number, { clientId: number; input: I; callAt: number }>();
  private readonly done = new Map<number, Operation<I, O>>();
  private nextId = 0;

  invoke(clientId: number, input: I): number {
    const id = this.nextId++;
    this.open.set(id, { clientId, input, callAt: this.clock++ });
    return id;
  }

  complete(id: number, output: O): void {
    const call = this.open.get(id);
    if (call === undefined) throw testkitErrors.create('TW_TESTKIT_BAD_HISTORY', `operation ${id} is not open`);
    this.open.delete(id);
    this.done.set(id, { ...call, output, returnAt: this.clock++ });
  }

  /** The operation is known not to have taken effect: drop it from the history. */
  discard(id: number): void {
    this.open.delete(id);
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Completed operations plus open ones as timeouts, in call order. */
  history(): Operation<I, O>[] {
    const ops: Operation<I, O>[] = [...this.done.values()];
    for (const call of this.open.values()) ops.push({ ...call, output: undefined, returnAt: undefined });
    return ops.sort((a, b) => a.callAt - b.callAt);
  }
}
