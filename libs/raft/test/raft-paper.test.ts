/**
 * Tests that follow sentences of the Raft paper (Ongaro and Ousterhout, "In Search of an
 * Understandable Consensus Algorithm", sections 5.2-5.4 and Figures 2, 7 and 8).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  EntryType,
  MemoryStorage,
  MessageType,
  NONE,
  RawNode,
  StateType,
  newMessage,
  seededRandom,
  type Entry,
  type Message,
  type RaftConfig,
} from '../src/index.js';
import { InteractionEnv, type EnvNode } from './interaction-env.js';

const voters = [1, 2, 3];
const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(0) });

function node(id: number, opts: { log?: number[]; term?: number; vote?: number; seed?: number; config?: Partial<RaftConfig> } = {}): { raw: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters, learners: [] });
  const log = opts.log ?? [];
  storage.append(log.map((t, i) => ent(i + 1, t)));
  storage.setHardState({ term: opts.term ?? (log[log.length - 1] ?? 0), vote: opts.vote ?? NONE, commit: 0 });
  const raw = new RawNode({ id, electionTick: 10, heartbeatTick: 1, ...opts.config }, { storage, random: seededRandom(opts.seed ?? id) });
  return { raw, storage };
}

/** Handles one Ready as the contract says: persist, then return the messages to send. */
function drain(n: { raw: RawNode; storage: MemoryStorage }): Message[] {
  if (!n.raw.hasReady()) return [];
  const rd = n.raw.ready();
  if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
  n.storage.append(rd.entries);
  if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
  n.raw.advance();
  return [...rd.messages];
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('5.2 leader election', () => {
  it('a follower campaigns after a randomised timeout in [electionTick, 2 * electionTick), taken from the injected source only', () => {
    vi.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random must not be used');
    });
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const ticksUntilCampaign = (): number => {
        const n = node(1, { seed });
        for (let t = 1; t <= 40; t++) {
          n.raw.tick();
          if (n.raw.raft.state === StateType.Candidate) return t;
        }
        return -1;
      };
      const t = ticksUntilCampaign();
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThan(20);
      // Deterministic for a given seed.
      expect(ticksUntilCampaign()).toBe(t);
      seen.add(t);
    }
    // Randomised: different seeds spread over the range (split votes are unlikely).
    expect(seen.size).toBeGreaterThan(4);
  });

  it('a candidate increments its term, votes for itself, persists both and asks every other voter', () => {
    const n = node(1, { log: [1, 1], term: 1 });
    n.raw.campaign();
    const rd = n.raw.ready();
    expect(rd.hardState).toEqual({ term: 2, vote: 1, commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
      [MessageType.Vote, 2, 2, 2, 1],
      [MessageType.Vote, 3, 2, 2, 1],
    ]);
  });

  it('each server votes for at most one candidate in a term, also across restarts (the vote is persisted)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ from: fc.constantFrom(2, 3, 4, 5), restart: fc.boolean() }), { minLength: 1, maxLength: 12 }), (reqs) => {
        const storage = new MemoryStorage({ voters: [1, 2, 3, 4, 5], learners: [] });
        const mk = (): RawNode => new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1 }, { storage, random: seededRandom(1) });
        let raw = mk();
        const granted = new Set<number>();
        for (const r of reqs) {
          if (r.restart) raw = mk();
          raw.step(newMessage({ type: MessageType.Vote, from: r.from, to: 1, term: 5, index: 0, logTerm: 0 }));
          for (const m of drain({ raw, storage })) if (m.type === MessageType.VoteResp && !m.reject) granted.add(m.to);
        }
        expect(granted.size).toBeLessThanOrEqual(1);
        expect(storage.initialState().hardState.term).toBe(5);
      }),
      { seed: 52, numRuns: 200 },
    );
  });
});

describe('5.4.1 election restriction', () => {
  it('a vote is granted only to a candidate whose log is at least as up-to-date', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 6 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 8 }),
        (voterTermsRaw, candLastTerm, candLastIndex) => {
          const voterLog = [...voterTermsRaw].sort((a, b) => a - b);
          const n = node(1, { log: voterLog, term: 4 });
          n.raw.step(newMessage({ type: MessageType.Vote, from: 2, to: 1, term: 6, index: candLastIndex, logTerm: candLastTerm }));
          const resp = drain(n).find((m) => m.type === MessageType.VoteResp)!;
          const vLastTerm = voterLog[voterLog.length - 1] ?? 0;
          const upToDate = candLastTerm > vLastTerm || (candLastTerm === vLastTerm && candLastIndex >= voterLog.length);
          expect(!resp.reject).toBe(upToDate);
        },
      ),
      { seed: 541, numRuns: 300 },
    );
  });
});

describe('5.3 log replication (Figure 7)', () => {
  // The leader of term 8 and the follower logs (a)-(f) of Figure 7 (terms of entries 1, 2, ...).
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, flog] of Object.entries(followers)) {
    it(`follower (${name}) ends with exactly the leader's log`, () => {
      const env = new InteractionEnv();
      const mk = (id: number, log: number[]): EnvNode => {
        const n = node(id, { log, term: 7 });
        return { id, raw: n.raw, storage: n.storage, config: { id, electionTick: 10, heartbeatTick: 1 }, applied: [], appliedAt: [], appliedIndex: 0, confState: { voters, learners: [] }, readStates: [] };
      };
      env.nodes.set(1, mk(1, leaderLog));
      env.nodes.set(2, mk(2, flog));
      env.nodes.set(3, mk(3, leaderLog));
      env.node(1).raw.campaign();
      env.stabilize([1, 2, 3]);
      expect(env.node(1).raw.raft.state).toBe(StateType.Leader);
      expect(env.node(1).raw.raft.term).toBe(8);
      const terms = (n: EnvNode): number[] => n.storage.entries(n.storage.firstIndex(), n.storage.lastIndex() + 1, Infinity).map((e) => e.term);
      expect(terms(env.node(2))).toEqual([...leaderLog, 8]);
      // Everything up to the term-8 entry is committed and applied everywhere.
      expect(env.node(2).appliedIndex).toBe(11);
    });
  }
});

describe('5.4.2 committing entries from previous terms (Figure 8)', () => {
  it('the leader does not commit a previous-term entry by counting replicas, only with one of its own term', () => {
    // Node 1 leads term 3 over a log whose index 2 is from term 1; node 2 holds index 2 too.
    const a = node(1, { log: [1, 1], term: 2 });
    const b = node(2, { log: [1, 1], term: 2 });
    const c = node(3, { log: [1], term: 2 });
    const nodes = new Map([
      [1, a],
      [2, b],
      [3, c],
    ]);
    a.raw.campaign();
    const deliver = (msgs: Message[], only?: (m: Message) => boolean): Message[] => {
      const out: Message[] = [];
      for (const m of msgs) if (only === undefined || only(m)) nodes.get(m.to)!.raw.step(m);
      for (const n of nodes.values()) out.push(...drain(n));
      return out;
    };
    let msgs = deliver(drain(a));
    msgs = deliver(msgs); // votes -> leader; leader appends its term-3 entry at index 3
    expect(a.raw.raft.state).toBe(StateType.Leader);
    // Deliver only node 2's path until node 2 acknowledged index 2 but not index 3: impossible in
    // one MsgApp, so check the rule directly on the progress: match on a quorum at index 2.
    a.raw.raft.prs.get(2)!.match = 2;
    expect(a.raw.raft.maybeCommit()).toBe(false);
    expect(a.raw.raft.raftLog.committed).toBe(0);
    a.raw.raft.prs.get(2)!.match = 3;
    expect(a.raw.raft.maybeCommit()).toBe(true);
    expect(a.raw.raft.raftLog.committed).toBe(3);
    void msgs;
  });
});

describe('persistence contract', () => {
  it('messages of a Ready never depend on state that is not in that Ready or persisted before', () => {
    // A follower acknowledges an append only in the Ready that carries the appended entries,
    // and grants a vote only in the Ready that carries the vote in its hard state.
    const f = node(2, { log: [1], term: 1 });
    f.raw.step(newMessage({ type: MessageType.App, from: 1, to: 2, term: 1, index: 1, logTerm: 1, entries: [ent(2, 1), ent(3, 1)], commit: 1 }));
    const rd = f.raw.ready();
    const ack = rd.messages.find((m) => m.type === MessageType.AppResp)!;
    expect(ack.index).toBe(3);
    expect(rd.entries.map((e) => e.index)).toEqual([2, 3]);
    expect(rd.mustSync).toBe(true);
    f.storage.append(rd.entries);
    f.raw.advance();
    f.raw.step(newMessage({ type: MessageType.Vote, from: 3, to: 2, term: 2, index: 3, logTerm: 1 }));
    const rd2 = f.raw.ready();
    expect(rd2.messages.find((m) => m.type === MessageType.VoteResp)?.reject).toBe(false);
    expect(rd2.hardState).toMatchObject({ term: 2, vote: 3 });
    expect(rd2.mustSync).toBe(true);
  });

  it('an acknowledgement of entries replaced before they were persisted is withdrawn', () => {
    // The follower appends 2..3 from the term-1 leader (ack of 3 queued, nothing persisted yet),
    // then the term-2 leader replaces index 2 on: the queued ack of 3 must not be sent.
    const f = node(2, { log: [1], term: 1 });
    f.raw.step(newMessage({ type: MessageType.App, from: 1, to: 2, term: 1, index: 1, logTerm: 1, entries: [ent(2, 1), ent(3, 1)], commit: 1 }));
    f.raw.step(newMessage({ type: MessageType.App, from: 3, to: 2, term: 2, index: 1, logTerm: 1, entries: [ent(2, 2)], commit: 1 }));
    const rd = f.raw.ready();
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([[2, 2]]);
    const acks = rd.messages.filter((m) => m.type === MessageType.AppResp && !m.reject).map((m) => [m.to, m.index]);
    expect(acks).toEqual([[3, 2]]);
  });
});
