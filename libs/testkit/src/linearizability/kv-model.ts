/**
 * A key-value store as a sequential model: get / put / delete / append / cas on string values.
 * Partitioned per key: operations on different keys commute, so each key is checked alone.
 */
import type { Model, Operation } from './model.js';

export type KvInput =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'append'; readonly key: string; readonly value: string }
  /** Sets `value` when the current value equals `expected` (null: key absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

/** get: `value` (null when absent); cas: `ok`; put / delete / append: `{}`. */
export interface KvOutput {
  readonly value?: string | null;
  readonly ok?: boolean;
}

/** One key's state: its value, or null when absent. */
export type KvKeyState = string | null;

export const kvModel: Model<KvKeyState, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        return [output === undefined || (output.value ?? null) === state, state];
      case 'put':
        return [true, input.value];
      case 'delete':
        return [true, null];
      case 'append':
        return [true, (state ?? '') + input.value];
      case 'cas': {
        const matches = state === input.expected;
        if (output === undefined) return [true, matches ? input.value : state];
        return [output.ok === matches, matches ? input.value : state];
      }
    }
  },
  hash: (state) => (state === null ? '\u0000' : 'v' + state),
  partition(ops) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of ops) {
      let list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, (list = []));
      list.push(op);
    }
    return [...byKey.values()];
  },
  describe(input, output) {
    const args = input.op === 'get' || input.op === 'delete' ? '' : input.op === 'cas' ? ` ${JSON.stringify(input.expected)}->${JSON.stringify(input.value)}` : ` ${JSON.stringify(input.value)}`;
    const out = output === undefined ? '?' : input.op === 'get' ? JSON.stringify(output.value ?? null) : input.op === 'cas' ? String(output.ok) : 'ok';
    return `${input.op}(${input.key}${args}) -> ${out}`;
  },
};
