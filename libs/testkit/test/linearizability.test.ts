import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLinearizable, describeFailure, HistoryRecorder, kvModel, type KvInput, type KvOutput, type Operation } from '../src/index.js';

type Op = Operation<KvInput, KvOutput>;

function op(clientId: number, input: KvInput, callAt: number, output: KvOutput | undefined, returnAt: number | undefined): Op {
  return { clientId, input, callAt, output, returnAt };
}
const put = (key: string, value: string): KvInput => ({ op: 'put', key, value });
const get = (key: string): KvInput => ({ op: 'get', key });

describe('linearizability checker (KV model)', () => {
  it('accepts a sequential history', () => {
    const h = [op(0, put('x', '1'), 0, {}, 1), op(0, get('x'), 2, { value: '1' }, 3), op(1, { op: 'delete', key: 'x' }, 4, {}, 5), op(1, get('x'), 6, { value: null }, 7)];
    expect(checkLinearizable(kvModel, h).result).toBe('ok');
  });

  it('rejects the classic stale read: a read after a completed write returns the old value', () => {
    const h = [op(0, put('x', '1'), 0, {}, 1), op(1, put('x', '2'), 2, {}, 3), op(2, get('x'), 4, { value: '1' }, 5)];
    const report = checkLinearizable(kvModel, h);
    expect(report.result).toBe('illegal');
    expect(describeFailure(kvModel, report)).toContain('get(x) -> "1"');
  });

  it('accepts concurrent reads that see the old and the new value in a legal order', () => {
    const h = [op(0, put('x', '1'), 0, {}, 10), op(1, get('x'), 2, { value: '1' }, 3), op(2, get('x'), 1, { value: null }, 4)];
    expect(checkLinearizable(kvModel, h).result).toBe('ok');
  });

  it('rejects a value that reverts: new value seen, then the old one, both within a write', () => {
    const h = [op(0, put('x', '1'), 0, {}, 10), op(1, get('x'), 2, { value: '1' }, 3), op(2, get('x'), 4, { value: null }, 5)];
    expect(checkLinearizable(kvModel, h).result).toBe('illegal');
  });

  it('rejects a read of a value never written', () => {
    expect(checkLinearizable(kvModel, [op(0, get('x'), 0, { value: 'ghost' }, 1)]).result).toBe('illegal');
  });

  it('treats a timed-out write as maybe-applied, in either direction', () => {
    const applied = [op(0, put('x', '1'), 0, undefined, undefined), op(1, get('x'), 5, { value: '1' }, 6)];
    const notApplied = [op(0, put('x', '1'), 0, undefined, undefined), op(1, get('x'), 5, { value: null }, 6)];
    expect(checkLinearizable(kvModel, applied).result).toBe('ok');
    expect(checkLinearizable(kvModel, notApplied).result).toBe('ok');
    // ...but once observed it cannot be un-applied.
    const flipFlop = [...applied, op(2, get('x'), 7, { value: null }, 8)];
    expect(checkLinearizable(kvModel, flipFlop).result).toBe('illegal');
    // ...and it cannot take effect before its call.
    const early = [op(1, get('x'), 0, { value: '1' }, 1), op(0, put('x', '1'), 2, undefined, undefined)];
    expect(checkLinearizable(kvModel, early).result).toBe('illegal');
  });

  it('checks append and cas', () => {
    const ok = [
      op(0, { op: 'append', key: 'l', value: 'a' }, 0, {}, 1),
      op(1, { op: 'append', key: 'l', value: 'b' }, 2, {}, 5),
      op(2, { op: 'cas', key: 'l', expected: 'a', value: 'z' }, 3, { ok: true }, 4),
      op(3, get('l'), 6, { value: 'zb' }, 7),
    ];
    expect(checkLinearizable(kvModel, ok).result).toBe('ok');
    const bad = [...ok.slice(0, 3), op(3, get('l'), 6, { value: 'ab' }, 7)];
    expect(checkLinearizable(kvModel, bad).result).toBe('illegal');
    const casFail = [op(0, put('c', '1'), 0, {}, 1), op(1, { op: 'cas', key: 'c', expected: '1', value: '2' }, 2, { ok: false }, 3)];
    expect(checkLinearizable(kvModel, casFail).result).toBe('illegal');
  });

  it('returns unknown when the step budget runs out', () => {
    // Many concurrent writes and a read that matches none force a long search.
    const h: Op[] = [];
    for (let i = 0; i < 14; i++) h.push(op(i, put('x', String(i)), 0, {}, 100));
    h.push(op(99, get('x'), 50, { value: 'nope' }, 60));
    expect(checkLinearizable(kvModel, h, { maxSteps: 50 }).result).toBe('unknown');
    expect(checkLinearizable(kvModel, h, { maxSteps: 10_000_000 }).result).toBe('illegal');
  });

  it('partitions per key: a long multi-key history checks quickly', () => {
    const rec = new HistoryRecorder<KvInput, KvOutput>();
    const store = new Map<string, string>();
    // 16 clients, 4000 operations over 40 keys; each client's op spans several others.
    const pending: { id: number; input: KvInput; output: KvOutput }[] = [];
    for (let i = 0; i < 4000; i++) {
      const key = `k${i % 40}`;
      const input: KvInput = i % 3 === 0 ? get(key) : put(key, String(i));
      const id = rec.invoke(i % 16, input);
      let output: KvOutput = {};
      if (input.op === 'get') output = { value: store.get(key) ?? null };
      else if (input.op === 'put') store.set(key, input.value);
      pending.push({ id, input, output });
      if (pending.length > 8) {
        const done = pending.shift()!;
        rec.complete(done.id, done.output);
      }
    }
    const report = checkLinearizable(kvModel, rec.history());
    expect(report.result).toBe('ok');
    expect(report.partitions.length).toBe(40);
  });
});

/** Reference: tries every real-time-respecting order of every subset of the timed-out ops. */
function bruteForce(history: readonly Op[]): boolean {
  const timedOut = history.filter((o) => o.returnAt === undefined);
  const done = history.filter((o) => o.returnAt !== undefined);
  for (let mask = 0; mask < 1 << timedOut.length; mask++) {
    const ops = [...done, ...timedOut.filter((_, i) => (mask & (1 << i)) !== 0)];
    if (search(ops, new Map(), new Array<boolean>(ops.length).fill(false), 0)) return true;
  }
  return false;
}

function search(ops: readonly Op[], store: Map<string, string>, used: boolean[], count: number): boolean {
  if (count === ops.length) return true;
  for (let i = 0; i < ops.length; i++) {
    if (used[i]) continue;
    const o = ops[i]!;
    // o may go next only if no unused op returned before o was called.
    if (ops.some((p, j) => !used[j] && j !== i && p.returnAt !== undefined && p.returnAt < o.callAt)) continue;
    const before = store.get(o.input.key);
    const cur = before ?? null;
    let legal = true;
    const inp = o.input;
    if (inp.op === 'get') legal = o.output === undefined || (o.output.value ?? null) === cur;
    else if (inp.op === 'put') store.set(inp.key, inp.value);
    else if (inp.op === 'delete') store.delete(inp.key);
    else if (inp.op === 'append') store.set(inp.key, (cur ?? '') + inp.value);
    else {
      const m = cur === inp.expected;
      if (o.output !== undefined && o.output.ok !== m) legal = false;
      if (m) store.set(inp.key, inp.value);
    }
    if (legal) {
      used[i] = true;
      if (search(ops, store, used, count + 1)) return true;
      used[i] = false;
    }
    if (before === undefined) store.delete(inp.key);
    else store.set(inp.key, before);
  }
  return false;
}

const opSpec = fc.record({
  key: fc.constantFrom('a', 'b'),
  kind: fc.constantFrom('get', 'get', 'put', 'delete', 'append', 'cas'),
  value: fc.constantFrom('1', '2'),
  expected: fc.constantFrom<string | null>(null, '1', '2'),
  start: fc.integer({ min: 0, max: 12 }),
  len: fc.integer({ min: 0, max: 6 }),
  timedOut: fc.integer({ min: 0, max: 6 }).map((x) => x === 0),
  applied: fc.boolean(),
  lp: fc.double({ min: 0, max: 1, noNaN: true }),
  corrupt: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
  corruptValue: fc.constantFrom<string | null>(null, '1', '2', '12', '21'),
});

/** Builds a history that is linearizable by construction, then corrupts some outputs. */
type OpSpec = typeof opSpec extends fc.Arbitrary<infer T> ? T : never;

function buildHistory(specs: readonly OpSpec[]): Op[] {
  const withTimes = specs.map((s, i) => {
    const input: KvInput =
      s.kind === 'get' ? { op: 'get', key: s.key }
      : s.kind === 'put' ? { op: 'put', key: s.key, value: s.value }
      : s.kind === 'delete' ? { op: 'delete', key: s.key }
      : s.kind === 'append' ? { op: 'append', key: s.key, value: s.value }
      : { op: 'cas', key: s.key, expected: s.expected, value: s.value };
    const callAt = s.start * 2;
    const returnAt = s.timedOut ? undefined : callAt + s.len * 2 + 1;
    const lp = callAt + s.lp * ((returnAt ?? callAt + 20) - callAt);
    return { i, s, input, callAt, returnAt, lp, output: {} as KvOutput };
  });
  const store = new Map<string, string>();
  for (const w of [...withTimes].sort((a, b) => a.lp - b.lp)) {
    if (w.returnAt === undefined && !w.s.applied) continue;
    const cur = store.get(w.input.key) ?? null;
    const inp = w.input;
    if (inp.op === 'get') w.output = { value: cur };
    else if (inp.op === 'put') store.set(inp.key, inp.value);
    else if (inp.op === 'delete') store.delete(inp.key);
    else if (inp.op === 'append') store.set(inp.key, (cur ?? '') + inp.value);
    else {
      w.output = { ok: cur === inp.expected };
      if (cur === inp.expected) store.set(inp.key, inp.value);
    }
  }
  return withTimes.map((w) => {
    let output: KvOutput | undefined = w.returnAt === undefined ? undefined : w.output;
    if (output !== undefined && w.s.corrupt) {
      if (w.input.op === 'get') output = { value: w.s.corruptValue };
      else if (w.input.op === 'cas') output = { ok: !output.ok };
    }
    return op(w.i, w.input, w.callAt, output, w.returnAt);
  });
}

describe('linearizability checker against a brute-force reference', () => {
  it('agrees on small random histories (seeded)', () => {
    let illegal = 0;
    let legal = 0;
    fc.assert(
      fc.property(fc.array(opSpec, { minLength: 1, maxLength: 7 }), (specs) => {
        const history = buildHistory(specs);
        const expected = bruteForce(history);
        const got = checkLinearizable(kvModel, history).result;
        if (expected) legal++;
        else illegal++;
        return got === (expected ? 'ok' : 'illegal');
      }),
      { seed: 20261128, numRuns: 1500 },
    );
    // The generator must exercise both verdicts, or the property proves little.
    expect(illegal).toBeGreaterThan(100);
    expect(legal).toBeGreaterThan(300);
  });

  it('accepts every uncorrupted history (seeded)', () => {
    fc.assert(
      fc.property(fc.array(opSpec.map((s) => ({ ...s, corrupt: false })), { minLength: 1, maxLength: 40 }), (specs) => {
        return checkLinearizable(kvModel, buildHistory(specs)).result === 'ok';
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});
