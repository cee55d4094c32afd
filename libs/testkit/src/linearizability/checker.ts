/**
 * Linearizability checking: the Wing & Gong / Lowe search with memoization that Porcupine uses
 * (WGL with P-compositionality). The history becomes a time-ordered doubly linked list of call
 * and return entries; the search repeatedly tries to linearize the earliest pending call whose
 * model step is legal, "lifting" it (and its return) out of the list, and backtracks when it
 * reaches a return whose call it has not linearized. A cache of (linearized set, model state)
 * pairs already explored prunes the search: reaching the same pair again cannot succeed where it
 * failed before.
 *
 * Operations that never returned get a return at +infinity and an unknown output, so they may be
 * linearized anywhere after their call, or (equivalently) after everything else: "maybe".
 */
import { testkitErrors } from '../errors.js';
import { Bitset } from './bitset.js';
import type { Model, Operation } from './model.js';

export type CheckResult = 'ok' | 'illegal' | 'unknown';

export interface CheckOptions {
  /** Upper bound on search steps over all partitions (deterministic budget). Default 5,000,000. */
  readonly maxSteps?: number;
  /** Optional wall-clock budget; needs `now`. */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

export interface PartitionReport<I, O> {
  readonly result: CheckResult;
  readonly ops: readonly Operation<I, O>[];
  /** The longest linearizable prefix found (indexes into `ops`), for failure reports. */
  readonly longestPrefix: readonly number[];
  readonly steps: number;
}

export interface CheckReport<I, O> {
  readonly result: CheckResult;
  readonly steps: number;
  readonly partitions: readonly PartitionReport<I, O>[];
  /** Index of the first illegal partition, if any. */
  readonly illegalPartition: number | undefined;
}

const NIL = -1;

class Budget {
  steps = 0;
  private readonly deadline: number | undefined;
  constructor(
    private readonly maxSteps: number,
    timeoutMs: number | undefined,
    private readonly now: (() => number) | undefined,
  ) {
    this.deadline = timeoutMs !== undefined && now !== undefined ? now() + timeoutMs : undefined;
  }
  /** Counts one step; false once the budget is spent. */
  tick(): boolean {
    this.steps++;
    if (this.steps > this.maxSteps) return false;
    if (this.deadline !== undefined && (this.steps & 1023) === 0 && this.now!() > this.deadline) return false;
    return true;
  }
}

function checkPartition<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], budget: Budget): PartitionReport<I, O> {
  const n = ops.length;
  const startSteps = budget.steps;
  if (n === 0) return { result: 'ok', ops, longestPrefix: [], steps: 0 };
  // Entries 0..n-1 are calls, n..2n-1 returns; entry 2n is the list head.
  const total = 2 * n;
  const head = total;
  const time: number[] = new Array<number>(total);
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    time[i] = op.callAt;
    time[n + i] = op.returnAt ?? Number.POSITIVE_INFINITY;
    if (op.returnAt !== undefined && op.returnAt < op.callAt) throw testkitErrors.create('TW_TESTKIT_BAD_HISTORY', `operation ${i} returns before its call`);
  }
  const order = Array.from({ length: total }, (_, e) => e);
  // Calls before returns at equal times: touching operations count as concurrent (permissive).
  order.sort((a, b) => time[a]! - time[b]! || (a < n ? 0 : 1) - (b < n ? 0 : 1) || a - b);
  const next = new Int32Array(total + 1).fill(NIL);
  const prev = new Int32Array(total + 1).fill(NIL);
  let last = head;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }

  const lift = (c: number): void => {
    next[prev[c]!] = next[c]!;
    prev[next[c]!] = prev[c]!; // a call is always followed by at least its return
    const r = c + n;
    next[prev[r]!] = next[r]!;
    if (next[r]! !== NIL) prev[next[r]!] = prev[r]!;
  };
  const unlift = (c: number): void => {
    const r = c + n;
    if (next[r]! !== NIL) prev[next[r]!] = r;
    next[prev[r]!] = r;
    prev[next[c]!] = c;
    next[prev[c]!] = c;
  };

  const linearized = new Bitset(n);
  const cache = new Set<string>();
  const calls: { op: number; state: S }[] = [];
  let state = model.init();
  let longest: number[] = [];
  let entry = next[head]!;
  while (next[head]! !== NIL) {
    if (!budget.tick()) {
      return { result: 'unknown', ops, longestPrefix: longest, steps: budget.steps - startSteps };
    }
    if (entry < n) {
      const op = ops[entry]!;
      const [ok, newState] = model.step(state, op.input, op.output);
      let advanced = false;
      if (ok) {
        linearized.set(entry);
        const key = linearized.key() + '|' + model.hash(newState);
        if (!cache.has(key)) {
          cache.add(key);
          calls.push({ op: entry, state });
          state = newState;
          lift(entry);
          if (calls.length > longest.length) longest = calls.map((c) => c.op);
          entry = next[head]!;
          advanced = true;
        } else {
          linearized.clear(entry);
        }
      }
      if (!advanced) entry = next[entry]!;
    } else {
      // A return whose call is not linearized: backtrack.
      const top = calls.pop();
      if (top === undefined) return { result: 'illegal', ops, longestPrefix: longest, steps: budget.steps - startSteps };
      state = top.state;
      linearized.clear(top.op);
      unlift(top.op);
      entry = next[top.op]!;
    }
  }
  return { result: 'ok', ops, longestPrefix: calls.map((c) => c.op), steps: budget.steps - startSteps };
}

/** Checks `history` against `model`; 'unknown' when the budget ran out before a verdict. */
export function checkLinearizable<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[], options: CheckOptions = {}): CheckReport<I, O> {
  const budget = new Budget(options.maxSteps ?? 5_000_000, options.timeoutMs, options.now);
  const parts = model.partition ? model.partition(history) : [history.slice()];
  const reports: PartitionReport<I, O>[] = [];
  let sawUnknown = false;
  for (let i = 0; i < parts.length; i++) {
    const report = checkPartition(model, parts[i]!, budget);
    reports.push(report);
    if (report.result === 'illegal') return { result: 'illegal', steps: budget.steps, partitions: reports, illegalPartition: i };
    if (report.result === 'unknown') sawUnknown = true;
  }
  return { result: sawUnknown ? 'unknown' : 'ok', steps: budget.steps, partitions: reports, illegalPartition: undefined };
}

/** A multi-line description of an illegal partition, for test failure messages. */
export function describeFailure<S, I, O>(model: Model<S, I, O>, report: CheckReport<I, O>, maxOps = 60): string {
  if (report.illegalPartition === undefined) return `linearizability: ${report.result}`;
  const part = report.partitions[report.illegalPartition]!;
  const lines = [`linearizability: illegal partition #${report.illegalPartition} (${part.ops.length} ops); longest linearizable prefix ${part.longestPrefix.length} ops`];
  const sorted = part.ops.map((op, i) => ({ op, i })).sort((a, b) => a.op.callAt - b.op.callAt);
  for (const { op, i } of sorted.slice(0, maxOps)) {
    const what = model.describe ? model.describe(op.input, op.output) : JSON.stringify({ input: op.input, output: op.output });
    lines.push(`  #${i} client ${op.clientId} [${op.callAt}, ${op.returnAt ?? 'timeout'}] ${what}${part.longestPrefix.includes(i) ? '' : '   <- not in prefix'}`);
  }
  if (sorted.length > maxOps) lines.push(`  ... ${sorted.length - maxOps} more`);
  return lines.join('\n');
}
