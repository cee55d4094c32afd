/** Unit tests of the simulator's parts: the KV state machine's sessions, the disk's crash model, the PRNG. */
import { describe, expect, it } from 'vitest';
import { EntryType } from '@tw/raft';
import { KvStateMachine, kvService, Prng, SimDisk } from '../src/index.js';

describe('KvStateMachine', () => {
  it('applies a retried request once and answers it again', () => {
    const svc = kvService();
    const sm = new KvStateMachine();
    const cmd = svc.encode(1, 1, { op: 'append', key: 'a', value: 'x' });
    expect(sm.apply(cmd)).toEqual({ requestKey: '1:1', result: {} });
    expect(sm.apply(cmd)).toEqual({ requestKey: '1:1', result: {} });
    expect(sm.read({ op: 'get', key: 'a' })).toEqual({ value: 'x' });
    sm.apply(svc.encode(1, 2, { op: 'get', key: 'a' }));
    // An old request arriving late has no effect and no reply.
    expect(sm.apply(svc.encode(1, 1, { op: 'append', key: 'a', value: 'x' }))).toBeUndefined();
    expect(sm.read({ op: 'get', key: 'a' })).toEqual({ value: 'x' });
  });

  it('snapshots and restores to an equal state', () => {
    const svc = kvService();
    const a = new KvStateMachine();
    a.apply(svc.encode(2, 1, { op: 'put', key: 'k', value: 'v' }));
    a.apply(svc.encode(3, 1, { op: 'cas', key: 'k', expected: 'v', value: 'w' }));
    const b = new KvStateMachine();
    b.restore(a.snapshot());
    expect(b.digest()).toBe(a.digest());
    expect(b.read({ op: 'get', key: 'k' })).toEqual({ value: 'w' });
  });
});

describe('SimDisk', () => {
  it('keeps durable writes and a prefix of the writes in flight across a crash', () => {
    const entries = (lo: number, hi: number, term: number) => Array.from({ length: hi - lo + 1 }, (_, k) => ({ index: lo + k, term, type: EntryType.Normal, data: new Uint8Array([lo + k]) }));
    let sawPartial = false;
    for (let seed = 0; seed < 40; seed++) {
      const disk = new SimDisk({ voters: [1], learners: [] });
      disk.enqueue({ kind: 'persist', entries: entries(1, 3, 1), hardState: { term: 1, vote: 1, commit: 0 } }, 0, 5);
      disk.flush(5);
      disk.enqueue({ kind: 'persist', entries: entries(4, 6, 1) }, 5, 5);
      disk.enqueue({ kind: 'persist', entries: entries(7, 9, 2), hardState: { term: 2, vote: 1, commit: 3 } }, 5, 5);
      disk.crash(new Prng(seed));
      const last = disk.durable.lastIndex();
      expect([3, 6, 9]).toContain(last);
      if (last === 6) sawPartial = true;
      expect(disk.durable.initialState().hardState.term).toBe(last === 9 ? 2 : 1);
    }
    expect(sawPartial).toBe(true);
  });
});

describe('Prng', () => {
  it('is deterministic per seed and stays in range', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 1000 }, () => a.int(7));
    expect(Array.from({ length: 1000 }, () => b.int(7))).toEqual(xs);
    expect(Math.min(...xs)).toBe(0);
    expect(Math.max(...xs)).toBe(6);
    expect(new Prng(43).next()).not.toBe(new Prng(42).next());
  });
});
