/**
 * The raft Storage compliance suite: every Storage implementation (MemoryStorage from @tw/raft,
 * LevelRaftStorage here) runs it through a small adapter that maps the write side. Durable
 * implementations also provide `reopen`, and then every check runs again after a restart.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, isTwError, type ConfState, type Entry, type HardState, type Snapshot, type Storage } from './raft-imports.js';

export interface StorageUpdate {
  readonly snapshot?: Snapshot;
  readonly entries?: readonly Entry[];
  readonly hardState?: HardState;
  readonly confState?: ConfState;
}

export interface StorageUnderTest {
  readonly storage: Storage;
  persist(update: StorageUpdate): Promise<void>;
  compact(index: number): Promise<void>;
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot>;
  close(): Promise<void>;
}

export interface StorageHarness {
  readonly name: string;
  /** A fresh, empty storage. */
  create(): Promise<StorageUnderTest>;
  /** Closes `s` and opens what it persisted (durable implementations only). */
  reopen?(s: StorageUnderTest): Promise<StorageUnderTest>;
  /** Removes temp folders and the like. */
  cleanup?(): Promise<void>;
}

const enc = new TextEncoder();
export function ent(index: number, term: number, data = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: enc.encode(data) };
}
function range(lo: number, hi: number, term: number | ((i: number) => number)): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, typeof term === 'number' ? term : term(i)));
  return out;
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return isTwError(err) ? err.code : 'not-a-TwError';
  }
  return undefined;
}

/** Everything a reader can observe, in plain values for deep equality. */
export function observe(s: Storage): unknown {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const snap = s.snapshot();
  const entries = last >= first ? s.entries(first, last + 1, Infinity).map((e) => ({ ...e, data: Buffer.from(e.data).toString('hex') })) : [];
  return {
    first,
    last,
    compactedTerm: s.term(first - 1),
    initial: s.initialState(),
    snapshot: { metadata: snap.metadata, data: Buffer.from(snap.data).toString('hex') },
    entries,
  };
}

export function storageComplianceSuite(h: StorageHarness): void {
  describe(`raft Storage compliance: ${h.name}`, () => {
    const open: StorageUnderTest[] = [];
    const make = async (): Promise<StorageUnderTest> => {
      const s = await h.create();
      open.push(s);
      return s;
    };
    /** Runs `check` now and, for durable storages, again after a restart. */
    const checkBoth = async (s: StorageUnderTest, check: (st: Storage) => void): Promise<StorageUnderTest> => {
      check(s.storage);
      if (h.reopen === undefined) return s;
      const r = await h.reopen(s);
      open.push(r);
      check(r.storage);
      return r;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close().catch(() => undefined);
      await h.cleanup?.();
    });

    it('starts empty', async () => {
      const s = await make();
      await checkBoth(s, (st) => {
        expect(st.firstIndex()).toBe(1);
        expect(st.lastIndex()).toBe(0);
        expect(st.term(0)).toBe(0);
        expect(st.initialState().hardState).toEqual({ term: 0, vote: 0, commit: 0 });
        expect(st.snapshot().metadata.index).toBe(0);
        expect(code(() => st.entries(1, 1, Infinity))).toBe('TW_RAFT_LOG_UNAVAILABLE');
        expect(code(() => st.term(1))).toBe('TW_RAFT_LOG_UNAVAILABLE');
      });
    });

    it('appends, reads ranges and terms, and persists the hard state', async () => {
      const s = await make();
      await s.persist({ entries: range(1, 5, (i) => (i < 3 ? 1 : 2)), hardState: { term: 2, vote: 3, commit: 4 } });
      await checkBoth(s, (st) => {
        expect(st.firstIndex()).toBe(1);
        expect(st.lastIndex()).toBe(5);
        expect([0, 1, 2, 3, 4, 5].map((i) => st.term(i))).toEqual([0, 1, 1, 2, 2, 2]);
        expect(st.entries(2, 4, Infinity).map((e) => e.index)).toEqual([2, 3]);
        expect(Buffer.from(st.entries(3, 4, Infinity)[0]!.data).toString()).toBe('e3t2');
        expect(st.initialState().hardState).toEqual({ term: 2, vote: 3, commit: 4 });
        expect(code(() => st.term(6))).toBe('TW_RAFT_LOG_UNAVAILABLE');
        expect(code(() => st.entries(1, 7, Infinity))).toBe('TW_RAFT_LOG_UNAVAILABLE');
        expect(code(() => st.entries(0, 2, Infinity))).toBe('TW_RAFT_LOG_COMPACTED');
      });
    });

    it('limits entries by size but returns at least one', async () => {
      const s = await make();
      await s.persist({ entries: range(1, 6, 1) });
      const one = s.storage.entries(1, 7, 0);
      expect(one.map((e) => e.index)).toEqual([1]);
      const sz = 24 + 'e1t1'.length;
      expect(s.storage.entries(1, 7, sz * 3).map((e) => e.index)).toEqual([1, 2, 3]);
      expect(s.storage.entries(1, 7, sz * 3 + sz - 1).map((e) => e.index)).toEqual([1, 2, 3]);
      expect(s.storage.entries(1, 7, Infinity).length).toBe(6);
    });

    it('an append at index i discards every stored entry from i on', async () => {
      const s = await make();
      await s.persist({ entries: range(1, 6, 1) });
      await s.persist({ entries: [ent(4, 2), ent(5, 2)] });
      await checkBoth(s, (st) => {
        expect(st.lastIndex()).toBe(5);
        expect([1, 2, 3, 4, 5].map((i) => st.term(i))).toEqual([1, 1, 1, 2, 2]);
      });
      const s2 = await make();
      await s2.persist({ entries: range(1, 6, 1) });
      await s2.persist({ entries: [ent(2, 3)] });
      await checkBoth(s2, (st) => {
        expect(st.lastIndex()).toBe(2);
        expect(st.term(2)).toBe(3);
      });
    });

    it('refuses an append that leaves a gap', async () => {
      const s = await make();
      await s.persist({ entries: range(1, 3, 1) });
      let err: unknown;
      try {
        await s.persist({ entries: [ent(5, 1)] });
      } catch (e) {
        err = e;
      }
      expect(isTwError(err, 'TW_RAFT_BAD_ENTRY')).toBe(true);
      expect(s.storage.lastIndex()).toBe(3);
    });

    it('compacts: entries before the point go, its term stays readable', async () => {
      const s = await make();
      await s.persist({ entries: range(1, 10, (i) => 1 + (i >> 2)) });
      await s.compact(4);
      const r = await checkBoth(s, (st) => {
        expect(st.firstIndex()).toBe(5);
        expect(st.lastIndex()).toBe(10);
        expect(st.term(4)).toBe(2);
        expect(code(() => st.term(3))).toBe('TW_RAFT_LOG_COMPACTED');
        expect(code(() => st.entries(4, 6, Infinity))).toBe('TW_RAFT_LOG_COMPACTED');
        expect(st.entries(5, 11, Infinity).map((e) => e.index)).toEqual([5, 6, 7, 8, 9, 10]);
      });
      let err: unknown;
      try {
        await r.compact(3);
      } catch (e) {
        err = e;
      }
      expect(isTwError(err, 'TW_RAFT_LOG_COMPACTED')).toBe(true);
      err = undefined;
      try {
        await r.compact(11);
      } catch (e) {
        err = e;
      }
      expect(isTwError(err, 'TW_RAFT_LOG_UNAVAILABLE')).toBe(true);
      // Appending entries that are all below the compaction point is a no-op.
      await r.persist({ entries: range(2, 4, 9) });
      expect(r.storage.lastIndex()).toBe(10);
      expect(r.storage.term(5)).toBe(2);
    });

    it('creates snapshots and refuses stale ones', async () => {
      const s = await make();
      const cs: ConfState = { voters: [1, 2, 3], learners: [4] };
      await s.persist({ entries: range(1, 8, 3), confState: cs });
      const snap = await s.createSnapshot(6, cs, enc.encode('image@6'));
      expect(snap.metadata).toEqual({ index: 6, term: 3, confState: cs });
      await s.compact(6);
      await checkBoth(s, (st) => {
        expect(st.snapshot().metadata).toEqual({ index: 6, term: 3, confState: cs });
        expect(Buffer.from(st.snapshot().data).toString()).toBe('image@6');
        expect(st.firstIndex()).toBe(7);
        expect(st.initialState().confState).toEqual(cs);
      });
    });

    it('installs a received snapshot, replacing the log, atomically with following entries', async () => {
      const s = await make();
      await s.persist({ entries: range(1, 5, 1), hardState: { term: 1, vote: 1, commit: 3 } });
      const cs: ConfState = { voters: [1, 2, 3], learners: [] };
      const snap: Snapshot = { metadata: { index: 20, term: 4, confState: cs }, data: enc.encode('image@20') };
      await s.persist({ snapshot: snap, entries: [ent(21, 4), ent(22, 5)], hardState: { term: 5, vote: 2, commit: 20 } });
      const r = await checkBoth(s, (st) => {
        expect(st.firstIndex()).toBe(21);
        expect(st.lastIndex()).toBe(22);
        expect(st.term(20)).toBe(4);
        expect(st.snapshot().metadata.index).toBe(20);
        expect(st.initialState()).toEqual({ hardState: { term: 5, vote: 2, commit: 20 }, confState: cs });
        expect(code(() => st.term(5))).toBe('TW_RAFT_LOG_COMPACTED');
      });
      let err: unknown;
      try {
        await r.persist({ snapshot: { ...snap, metadata: { ...snap.metadata, index: 10 } } });
      } catch (e) {
        err = e;
      }
      expect(isTwError(err, 'TW_RAFT_SNAPSHOT_OUT_OF_DATE')).toBe(true);
      expect(r.storage.firstIndex()).toBe(21);
    });

    it('matches a reference model under random operation sequences (seeded)', async () => {
      const opArb = fc.oneof(
        fc.record({ kind: fc.constant('append' as const), back: fc.integer({ min: 0, max: 4 }), count: fc.integer({ min: 1, max: 5 }), termUp: fc.boolean() }),
        fc.record({ kind: fc.constant('hard' as const), vote: fc.integer({ min: 0, max: 3 }) }),
        fc.record({ kind: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 6 }) }),
        fc.record({ kind: fc.constant('snapshot' as const), ahead: fc.integer({ min: 1, max: 6 }) }),
        fc.record({ kind: fc.constant('createSnapshot' as const), back: fc.integer({ min: 0, max: 3 }) }),
        fc.record({ kind: fc.constant('reopen' as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          let s = await make();
          // Reference: plain arrays, obviously right.
          let term = 1;
          let offset = 0;
          let offsetTerm = 0;
          let log: Entry[] = [];
          let hard: HardState = { term: 0, vote: 0, commit: 0 };
          let snapIndex = 0;
          const last = (): number => offset + log.length;
          const termAt = (i: number): number => (i === offset ? offsetTerm : log[i - offset - 1]!.term);
          for (const op of ops) {
            if (op.kind === 'append') {
              if (op.termUp) term++;
              const start = Math.max(offset + 1, last() + 1 - op.back);
              const es = range(start, start + op.count - 1, term);
              await s.persist({ entries: es });
              log = log.slice(0, start - offset - 1).concat(es);
            } else if (op.kind === 'hard') {
              hard = { term, vote: op.vote, commit: Math.min(last(), hard.commit + 1) };
              await s.persist({ hardState: hard });
            } else if (op.kind === 'compact') {
              const at = last() - op.back;
              if (at <= offset) continue;
              const t = termAt(at);
              await s.compact(at);
              log = log.slice(at - offset);
              offset = at;
              offsetTerm = t;
            } else if (op.kind === 'snapshot') {
              const at = Math.max(last(), snapIndex) + op.ahead;
              term++;
              await s.persist({ snapshot: { metadata: { index: at, term, confState: { voters: [1], learners: [] } }, data: enc.encode(`s${at}`) } });
              snapIndex = at;
              offset = at;
              offsetTerm = term;
              log = [];
            } else if (op.kind === 'createSnapshot') {
              const at = last() - op.back;
              if (at <= snapIndex || at < offset) continue;
              await s.createSnapshot(at, { voters: [1], learners: [] }, enc.encode(`c${at}`));
              snapIndex = at;
            } else if (h.reopen !== undefined) {
              s = await h.reopen(s);
              open.push(s);
            }
            const st = s.storage;
            expect(st.firstIndex()).toBe(offset + 1);
            expect(st.lastIndex()).toBe(last());
            expect(st.term(offset)).toBe(offsetTerm);
            if (log.length > 0) expect(st.entries(offset + 1, last() + 1, Infinity).map((e) => [e.index, e.term])).toEqual(log.map((e) => [e.index, e.term]));
            expect(st.initialState().hardState).toEqual(hard);
            expect(st.snapshot().metadata.index).toBe(snapIndex);
          }
          if (h.reopen !== undefined) {
            const before = observe(s.storage);
            s = await h.reopen(s);
            open.push(s);
            expect(observe(s.storage)).toEqual(before);
          }
          for (const o of open.splice(0)) await o.close().catch(() => undefined);
        }),
        { seed: 4242, numRuns: h.reopen === undefined ? 200 : 60 },
      );
    });
  });
}
