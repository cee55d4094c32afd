/**
 * The two inputs of a linearizability check (Porcupine's shape): a sequential model of the object
 * and a concurrent history of operations on it.
 */

/**
 * One operation of a history. Times are any monotonic numbers (the simulator uses a logical
 * clock); an operation A precedes B in real time when `A.returnAt < B.callAt`.
 *
 * An operation that never returned (client timed out, process crashed) has `returnAt` and
 * `output` undefined: it may or may not have taken effect, at any point after its call.
 * Operations that definitely did not take effect (refused before being proposed) should not be
 * in the history at all.
 */
export interface Operation<I, O> {
  readonly clientId: number;
  readonly input: I;
  readonly callAt: number;
  readonly output: O | undefined;
  readonly returnAt: number | undefined;
}

/**
 * A sequential specification. `step` must be pure: it returns whether `output` is a legal
 * result of applying `input` to `state`, and the state after. `output` undefined means
 * "unknown" (the operation timed out): any result is legal and the effect applies.
 */
export interface Model<S, I, O> {
  init(): S;
  step(state: S, input: I, output: O | undefined): readonly [boolean, S];
  /** Canonical string of a state: two states are equal exactly when their hashes are. */
  hash(state: S): string;
  /** Splits a history into independent sub-histories (P-compositionality), e.g. per key. */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** Human-readable rendering for failure reports. */
  describe?(input: I, output: O | undefined): string;
}
