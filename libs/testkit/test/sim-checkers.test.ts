/** The safety checkers flag crafted violations (and accept the legal cases next to them). */
import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '@tw/raft';
import { SafetyChecker, SafetyViolation, type LogView } from '../src/index.js';

const enc = new TextEncoder();
const ent = (index: number, term: number, data = `${index}/${term}`): Entry => ({ index, term, type: EntryType.Normal, data: enc.encode(data) });

function view(id: number, fields: { term: number; vote?: number; leader?: boolean; log?: Entry[]; commit?: number; voters?: number[] }): LogView {
  const log = fields.log ?? [];
  return {
    id,
    term: () => fields.term,
    vote: () => fields.vote ?? 0,
    voters: () => fields.voters ?? [1, 2, 3],
    commitIndex: fields.commit ?? 0,
    isLeader: () => fields.leader ?? false,
    firstIndex: () => 1,
    lastIndex: () => log.length,
    termAt: (i) => (i === 0 ? 0 : log[i - 1]?.term),
  };
}

function violation(f: () => void): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof SafetyViolation) return err.property;
    throw err;
  }
  return undefined;
}

describe('SafetyChecker', () => {
  it('election safety: two leaders of one term', () => {
    const c = new SafetyChecker({ protocolChecks: false });
    const a = view(1, { term: 3, leader: true });
    const b = view(2, { term: 3, leader: true });
    c.observeRole(a, [a, b]);
    expect(violation(() => c.observeRole(b, [a, b]))).toBe('election safety');
  });

  it('vote quorum: a leader without a quorum of votes in its term', () => {
    const c = new SafetyChecker();
    const voter = view(2, { term: 4, vote: 1 });
    c.observeVote(voter);
    const self = view(1, { term: 4, vote: 1, leader: true });
    c.observeVote(self);
    expect(violation(() => c.observeRole(self, [self]))).toBeUndefined();
    const lonely = view(3, { term: 5, vote: 3, leader: true });
    c.observeVote(lonely);
    c.observeVote(view(2, { term: 4, vote: 3 })); // a vote in an older term does not count
    expect(violation(() => c.observeRole(lonely, [lonely]))).toBe('vote quorum');
  });

  it('log matching: same index and term, different entries or predecessors', () => {
    const c = new SafetyChecker();
    c.observeAppend(1, [ent(1, 1), ent(2, 1)], (i) => (i === 2 ? 1 : 0));
    expect(violation(() => c.observeAppend(2, [ent(2, 1)], () => 1))).toBeUndefined();
    expect(violation(() => c.observeAppend(2, [ent(2, 1, 'other')], () => 1))).toBe('log matching');
    expect(violation(() => c.observeAppend(3, [ent(2, 1)], () => 7))).toBe('log matching');
  });

  it('state machine safety: different entries applied at one index', () => {
    const c = new SafetyChecker();
    c.observeApply(1, ent(5, 2));
    c.observeApply(2, ent(5, 2));
    expect(violation(() => c.observeApply(3, ent(5, 3)))).toBe('state machine safety');
  });

  it('leader completeness: a later leader lacks an entry committed earlier', () => {
    const c = new SafetyChecker({ protocolChecks: false });
    const log = [ent(1, 1), ent(2, 2)];
    const old = view(1, { term: 2, leader: true, log, commit: 2 });
    c.observeRole(old, [old]);
    c.observeLeaderCommit(old, 2, (i) => log[i - 1], [old]);
    const good = view(2, { term: 3, leader: true, log: [ent(1, 1), ent(2, 2), ent(3, 3)] });
    expect(violation(() => c.observeRole(good, [good]))).toBeUndefined();
    const bad = view(3, { term: 4, leader: true, log: [ent(1, 1), ent(2, 3)] });
    expect(violation(() => c.observeRole(bad, [bad]))).toBe('leader completeness');
  });

  it('commit rule: a leader commits an entry of an older term by counting', () => {
    const c = new SafetyChecker();
    const log = [ent(1, 1), ent(2, 1), ent(3, 2)];
    const votes = [view(1, { term: 2, vote: 1 }), view(2, { term: 2, vote: 1 })];
    for (const v of votes) c.observeVote(v);
    const l = view(1, { term: 2, vote: 1, leader: true, log, commit: 1 });
    c.observeRole(l, [l]);
    c.observeLeaderCommit(l, 1, (i) => log[i - 1], [l]);
    expect(violation(() => c.observeLeaderCommit(l, 2, (i) => log[i - 1], [l]))).toBe('commit rule');
    const c2 = new SafetyChecker();
    for (const v of votes) c2.observeVote(v);
    c2.observeRole(l, [l]);
    c2.observeLeaderCommit(l, 1, (i) => log[i - 1], [l]);
    expect(violation(() => c2.observeLeaderCommit(l, 3, (i) => log[i - 1], [l]))).toBeUndefined();
  });
});
