import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EntryType, MemoryStorage, entrySizeBytes, limitSize, raftErrors, type Entry } from '../src/index.js';

const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) });
const cs = { voters: [1, 2, 3], learners: [] };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('MemoryStorage', () => {
  it('starts empty with the bootstrap membership', () => {
    const s = new MemoryStorage(cs);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.initialState().confState).toEqual(cs);
    expect(codeOf(() => s.entries(1, 1, Infinity))).toBe('TW_RAFT_LOG_UNAVAILABLE');
  });

  it('serves entries and terms, with coded errors out of range', () => {
    const s = new MemoryStorage(cs);
    s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
    expect(s.entries(2, 4, Infinity).map((e) => e.index)).toEqual([2, 3]);
    expect(s.term(3)).toBe(2);
    expect(codeOf(() => s.term(5))).toBe('TW_RAFT_LOG_UNAVAILABLE');
    expect(codeOf(() => s.entries(2, 6, Infinity))).toBe('TW_RAFT_LOG_UNAVAILABLE');
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(1);
    expect(codeOf(() => s.term(1))).toBe('TW_RAFT_LOG_COMPACTED');
    expect(codeOf(() => s.entries(2, 3, Infinity))).toBe('TW_RAFT_LOG_COMPACTED');
    expect(codeOf(() => s.compact(2))).toBe('TW_RAFT_LOG_COMPACTED');
    expect(raftErrors.is(new Error('x'), 'TW_RAFT_LOG_COMPACTED')).toBe(false);
  });

  it('an append at index i discards stored entries from i on', () => {
    const s = new MemoryStorage(cs);
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.append([ent(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(codeOf(() => s.append([ent(5, 2)]))).toBe('TW_RAFT_BAD_ENTRY');
  });

  it('limits entries by size but always returns at least one', () => {
    const s = new MemoryStorage(cs);
    s.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')]);
    const one = entrySizeBytes(ent(1, 1, 'aaaa'));
    expect(s.entries(1, 4, 0)).toHaveLength(1);
    expect(s.entries(1, 4, one * 2)).toHaveLength(2);
    expect(limitSize([ent(1, 1, 'aaaa')], 1)).toHaveLength(1);
  });

  it('snapshots: create, apply, refuse older ones', () => {
    const s = new MemoryStorage(cs);
    s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
    const snap = s.createSnapshot(2, undefined, new Uint8Array([9]));
    expect(snap.metadata).toEqual({ index: 2, term: 1, confState: cs });
    expect(codeOf(() => s.createSnapshot(2, undefined, new Uint8Array(0)))).toBe('TW_RAFT_SNAPSHOT_OUT_OF_DATE');
    const other = new MemoryStorage(cs);
    other.applySnapshot(snap);
    expect(other.firstIndex()).toBe(3);
    expect(other.lastIndex()).toBe(2);
    expect(other.term(2)).toBe(1);
    expect(codeOf(() => other.applySnapshot(snap))).toBe('TW_RAFT_SNAPSHOT_OUT_OF_DATE');
  });

  it('matches a naive model under random appends and compactions', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant('append' as const), at: fc.nat(30), n: fc.integer({ min: 1, max: 5 }), term: fc.integer({ min: 1, max: 9 }) }), fc.record({ op: fc.constant('compact' as const), at: fc.nat(30) })), { maxLength: 40 }),
        (ops) => {
          const s = new MemoryStorage(cs);
          const model = new Map<number, number>(); // index -> term
          let first = 1;
          for (const o of ops) {
            const last = first - 1 + [...model.keys()].filter((i) => i >= first).length;
            if (o.op === 'append') {
              const at = Math.min(o.at + 1, last + 1);
              const ents = Array.from({ length: o.n }, (_, k) => ent(at + k, o.term));
              s.append(ents);
              // Entries wholly inside the compacted prefix are ignored.
              if (at + o.n - 1 < first) continue;
              for (const i of [...model.keys()]) if (i >= at) model.delete(i);
              for (const e of ents) if (e.index >= first) model.set(e.index, e.term);
            } else if (o.at >= first && o.at <= last) {
              s.compact(o.at);
              first = o.at + 1;
            }
            const lastNow = first - 1 + [...model.keys()].filter((i) => i >= first).length;
            expect(s.firstIndex()).toBe(first);
            expect(s.lastIndex()).toBe(lastNow);
            for (let i = first; i <= lastNow; i++) expect(s.term(i)).toBe(model.get(i));
          }
        },
      ),
      { seed: 4242, numRuns: 200 },
    );
  });
});
