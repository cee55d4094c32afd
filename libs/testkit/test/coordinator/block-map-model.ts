/**
 * The block map's client operations as a sequential model for the linearizability checker.
 *
 * Per-key partitioning (P-compositionality): every key of the namespace is a register holding the
 * committed block's value (the checksum, unique per write in the workload) and its version, or
 * absent. A commit writes, a delete writes "absent", a lookup reads.
 *
 * Batches touch several keys. `partition` projects each operation onto each key it touches, with
 * the same call and return times and the part of the output that concerns that key:
 * - a batch commit becomes one write per key, each with the version the batch reported for it;
 * - a lookupPrefix of n keys that answered `count` reads key i < count as its record and key
 *   `count` as absent; keys after it are not reported on, so they are left out;
 * - a delete of one key also reads (deleted 1 iff the key was committed); a delete of several
 *   keys reports only totals, so its projections are plain writes of "absent".
 * Projection is sound (a linearizable history projects to linearizable per-key histories, so no
 * false alarm), but it does not check atomicity across keys: a batch applied half on one replica
 * would pass here. That is covered elsewhere: every replica applies whole log entries through the
 * real block map, whose apply is one atomic store batch, and the simulator compares the state
 * digests of replicas at the same index.
 *
 * The workload expects no error: every error result is illegal.
 */
import type { Model, Operation } from '../../src/index.js';

export interface BlockWrite {
  readonly key: string;
  /** Unique per write; committed as the record's checksum. */
  readonly value: string;
}

export type BmRequest =
  | { readonly op: 'commit'; readonly blocks: readonly BlockWrite[] }
  | { readonly op: 'delete'; readonly keys: readonly string[] }
  | { readonly op: 'lookup'; readonly keys: readonly string[] }
  /** Administrator setup step (init-cluster, register-node, create-namespace); never in a history. */
  | { readonly op: 'setup'; readonly step: number };

export type BmResponse =
  | { readonly op: 'commit'; readonly versions: readonly number[] }
  /** deleted / missing -1: not reported (projection of a multi-key delete). */
  | { readonly op: 'delete'; readonly deleted: number; readonly missing: number }
  | { readonly op: 'lookup'; readonly count: number; readonly values: readonly string[]; readonly versions: readonly number[] }
  | { readonly op: 'setup' }
  | { readonly op: 'error'; readonly code: string; readonly message: string };

/** One key: absent, or the committed value with its version (null: written by a commit that timed out, version unknown). */
export type BmKeyState = { readonly value: string; readonly version: number | null } | null;

function keyOf(input: BmRequest): string {
  switch (input.op) {
    case 'commit':
      return input.blocks[0]!.key;
    case 'delete':
    case 'lookup':
      return input.keys[0]!;
    case 'setup':
      return '';
  }
}

/** The projections of one operation, one per key it tells something about. */
function project(op: Operation<BmRequest, BmResponse>): Operation<BmRequest, BmResponse>[] {
  const input = op.input;
  const out = op.output;
  const failed = out !== undefined && out.op === 'error';
  switch (input.op) {
    case 'commit':
      if (input.blocks.length === 1) return [op];
      return input.blocks.map((b, i) => ({
        ...op,
        input: { op: 'commit', blocks: [b] },
        output: out === undefined || failed ? out : out.op === 'commit' ? { op: 'commit', versions: [out.versions[i]!] } : out,
      }));
    case 'delete':
      if (input.keys.length === 1) return [op];
      return input.keys.map((k) => ({ ...op, input: { op: 'delete', keys: [k] }, output: out === undefined || failed ? out : { op: 'delete', deleted: -1, missing: -1 } }));
    case 'lookup': {
      if (out === undefined) return []; // a read that never answered tells nothing and changes nothing
      if (failed || out.op !== 'lookup') return [{ ...op, input: { op: 'lookup', keys: [input.keys[0]!] } }];
      const ops: Operation<BmRequest, BmResponse>[] = [];
      for (let i = 0; i <= out.count && i < input.keys.length; i++) {
        const output: BmResponse = i < out.count ? { op: 'lookup', count: 1, values: [out.values[i]!], versions: [out.versions[i]!] } : { op: 'lookup', count: 0, values: [], versions: [] };
        ops.push({ ...op, input: { op: 'lookup', keys: [input.keys[i]!] }, output });
      }
      return ops;
    }
    case 'setup':
      return [];
  }
}

export const blockMapModel: Model<BmKeyState, BmRequest, BmResponse> = {
  init: () => null,
  step(state, input, output) {
    if (output !== undefined && output.op === 'error') return [false, state];
    switch (input.op) {
      case 'commit': {
        const value = input.blocks[0]!.value;
        if (output === undefined) return [true, { value, version: null }];
        if (output.op !== 'commit') return [false, state];
        const version = output.versions[0]!;
        // Versions grow with every commit, so a key's successive versions increase.
        const ok = state === null || state.version === null || version > state.version;
        return [ok, { value, version }];
      }
      case 'delete': {
        if (output === undefined) return [true, null];
        if (output.op !== 'delete') return [false, state];
        if (output.deleted < 0) return [true, null];
        return [output.deleted === (state === null ? 0 : 1) && output.missing === (state === null ? 1 : 0), null];
      }
      case 'lookup': {
        if (output === undefined) return [true, state];
        if (output.op !== 'lookup') return [false, state];
        if (output.count === 0) return [state === null, state];
        const value = output.values[0]!;
        const version = output.versions[0]!;
        if (state === null || state.value !== value || (state.version !== null && state.version !== version)) return [false, state];
        // A timed-out commit's version is learnt from the first read of its (unique) value.
        return [true, { value, version }];
      }
      case 'setup':
        return [true, state];
    }
  },
  hash: (state) => (state === null ? '-' : `${state.value}@${state.version ?? '?'}`),
  partition(ops) {
    const byKey = new Map<string, Operation<BmRequest, BmResponse>[]>();
    for (const op of ops) {
      for (const p of project(op)) {
        const key = keyOf(p.input);
        let list = byKey.get(key);
        if (list === undefined) byKey.set(key, (list = []));
        list.push(p);
      }
    }
    return [...byKey.values()];
  },
  describe(input, output) {
    const out =
      output === undefined
        ? '?'
        : output.op === 'error'
          ? `error ${output.code}`
          : output.op === 'commit'
            ? `v${output.versions.join(',v')}`
            : output.op === 'delete'
              ? output.deleted < 0 ? 'ok' : `deleted ${output.deleted}`
              : output.op === 'lookup'
                ? output.count === 0 ? 'absent' : output.values.map((v, i) => `${v}@v${output.versions[i]}`).join(' ')
                : 'ok';
    switch (input.op) {
      case 'commit':
        return `commit(${input.blocks.map((b) => `${b.key}=${b.value}`).join(' ')}) -> ${out}`;
      case 'delete':
        return `delete(${input.keys.join(' ')}) -> ${out}`;
      case 'lookup':
        return `lookup(${input.keys.join(' ')}) -> ${out}`;
      case 'setup':
        return `setup #${input.step} -> ${out}`;
    }
  },
};
