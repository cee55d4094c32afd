/**
 * Raft's safety properties (Raft paper, Figure 3), checked incrementally as the simulation runs:
 * - election safety: at most one leader per term;
 * - log matching: two logs holding an entry with the same index and term hold the same entry and
 *   agree on the term of the entry before it (hence, by induction, on the whole prefix);
 * - leader completeness: an entry committed in term T is in the log of every leader of a term > T;
 * - state machine safety: no two nodes apply different entries at the same index.
 * And two invariants of the protocol's steps (Figure 2), which catch the classic mistakes at the
 * moment they happen rather than when their damage shows:
 * - vote quorum: a leader of term T holds votes cast for it in term T by a quorum of voters;
 * - commit rule: a leader advances its commit index only to an entry of its own term.
 * A violation throws {@link SafetyViolation}.
 */
import type { Entry } from '@tw/raft';

export class SafetyViolation extends Error {
  constructor(
    readonly property: 'vote quorum' | 'commit rule' | 'election safety' | 'log matching' | 'leader completeness' | 'state machine safety' | 'liveness' | 'linearizability' | 'convergence' | 'durability' | 'state digest',
    message: string,
  ) {
    super(`${property}: ${message}`);
    this.name = 'SafetyViolation';
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Read access to one node's full raft log (stable and unstable), for the checkers. */
export interface LogView {
  readonly id: number;
  term(): number;
  /** The vote cast in the current term (0: none). */
  vote(): number;
  /** The current voters (membership). */
  voters(): readonly number[];
  /** The commit index. */
  commitIndex: number;
  isLeader(): boolean;
  firstIndex(): number;
  lastIndex(): number;
  /** Term at `i`, or undefined when compacted or beyond the end. */
  termAt(i: number): number | undefined;
}

interface Committed {
  readonly term: number;
  readonly data: Uint8Array;
  /** The term of the leader that first reported it committed. */
  readonly inTerm: number;
}

export class SafetyChecker {
  private readonly leaders = new Map<number, number>();
  private readonly entries = new Map<number, Map<number, { data: Uint8Array; prevTerm: number | undefined }>>();
  private readonly applied = new Map<number, { term: number; data: Uint8Array; by: number }>();
  private readonly committed = new Map<number, Committed>();
  private committedMax = 0;
  /** (node, term) pairs already checked for leader completeness. */
  private readonly leaderChecked = new Set<string>();
  electionsObserved = 0;
  /** term -> voter -> candidates it voted for in that term (several only after losing an unsynced vote). */
  private readonly votes = new Map<number, Map<number, Set<number>>>();
  /** node -> the term and commit index it had when last seen as leader. */
  private readonly leaderCommit = new Map<number, { term: number; commit: number }>();

  private readonly protocolChecks: boolean;

  constructor(options: { protocolChecks?: boolean } = {}) {
    this.protocolChecks = options.protocolChecks ?? true;
  }

  /** Call after anything that may have changed `node`'s term or vote. */
  observeVote(node: LogView): void {
    const v = node.vote();
    if (v === 0) return;
    const term = node.term();
    let byVoter = this.votes.get(term);
    if (byVoter === undefined) this.votes.set(term, (byVoter = new Map()));
    let set = byVoter.get(node.id);
    if (set === undefined) byVoter.set(node.id, (set = new Set()));
    set.add(v);
  }

  /** Call after anything that may have changed `node`'s role. */
  observeRole(node: LogView, allNodes: readonly LogView[]): void {
    if (!node.isLeader()) return;
    const term = node.term();
    const prior = this.leaders.get(term);
    if (prior === undefined) {
      this.leaders.set(term, node.id);
      this.electionsObserved++;
    } else if (prior !== node.id) {
      throw new SafetyViolation('election safety', `nodes ${prior} and ${node.id} are both leaders of term ${term}`);
    }
    const key = `${node.id}@${term}`;
    if (!this.leaderChecked.has(key)) {
      this.leaderChecked.add(key);
      const voters = node.voters();
      const byVoter = this.votes.get(term);
      const granted = voters.filter((v) => byVoter?.get(v)?.has(node.id) === true);
      if (this.protocolChecks && granted.length < Math.floor(voters.length / 2) + 1) {
        throw new SafetyViolation('vote quorum', `node ${node.id} leads term ${term} with votes from only [${granted.join(', ')}] of voters [${voters.join(', ')}]`);
      }
      for (const [index, c] of this.committed) if (c.inTerm < term) this.checkHas(node, index, c);
    }
    void allNodes;
  }

  /** A leader reports its commit index; entries up to it are committed in its term. */
  observeLeaderCommit(node: LogView, commit: number, entryAt: (i: number) => Entry | undefined, allNodes: readonly LogView[]): void {
    if (!node.isLeader()) return;
    const term = node.term();
    const seen = this.leaderCommit.get(node.id);
    if (this.protocolChecks && seen !== undefined && seen.term === term && commit > seen.commit && node.termAt(commit) !== term) {
      throw new SafetyViolation('commit rule', `leader ${node.id} of term ${term} advanced its commit index ${seen.commit} -> ${commit}, to an entry of term ${node.termAt(commit)}`);
    }
    this.leaderCommit.set(node.id, { term, commit });
    if (commit <= this.committedMax) return;
    for (let i = this.committedMax + 1; i <= commit; i++) {
      const e = entryAt(i);
      if (e === undefined) continue; // compacted on this leader: committed long ago
      const c: Committed = { term: e.term, data: e.data, inTerm: term };
      this.crossCheck(i, c.term, c.data, `leader ${node.id} commits`);
      this.committed.set(i, c);
      for (const other of allNodes) if (other.isLeader() && other.term() > term) this.checkHas(other, i, c);
    }
    this.committedMax = commit;
  }

  private checkHas(leader: LogView, index: number, c: Committed): void {
    if (index < leader.firstIndex()) return; // inside its snapshot, which holds only committed state
    const t = leader.termAt(index);
    if (t !== c.term) {
      throw new SafetyViolation(
        'leader completeness',
        `entry ${index} (term ${c.term}) was committed in term ${c.inTerm}, but leader ${leader.id} of term ${leader.term()} has ${t === undefined ? 'no entry' : `term ${t}`} there (last index ${leader.lastIndex()})`,
      );
    }
  }

  /** Entries appended to a node's log; `prevTermOf(i)` is the term before `i` in that log. */
  observeAppend(nodeId: number, appended: readonly Entry[], prevTermOf: (i: number) => number | undefined): void {
    for (const e of appended) {
      let byTerm = this.entries.get(e.index);
      if (byTerm === undefined) this.entries.set(e.index, (byTerm = new Map()));
      const prevTerm = e.index > 1 ? prevTermOf(e.index) : 0;
      const known = byTerm.get(e.term);
      if (known === undefined) {
        byTerm.set(e.term, { data: e.data, prevTerm });
        continue;
      }
      if (!sameBytes(known.data, e.data)) {
        throw new SafetyViolation('log matching', `node ${nodeId} holds a different entry at index ${e.index} term ${e.term} than another node`);
      }
      if (known.prevTerm !== undefined && prevTerm !== undefined && known.prevTerm !== prevTerm) {
        throw new SafetyViolation('log matching', `node ${nodeId}: entry ${e.index} term ${e.term} follows term ${prevTerm} here and term ${known.prevTerm} elsewhere`);
      }
      if (known.prevTerm === undefined && prevTerm !== undefined) byTerm.set(e.term, { data: known.data, prevTerm });
    }
  }

  /** A node applies a committed entry to its state machine. */
  observeApply(nodeId: number, e: Entry): void {
    const prior = this.applied.get(e.index);
    if (prior === undefined) {
      this.crossCheck(e.index, e.term, e.data, `node ${nodeId} applies`);
      this.applied.set(e.index, { term: e.term, data: e.data, by: nodeId });
      return;
    }
    if (prior.term !== e.term || !sameBytes(prior.data, e.data)) {
      throw new SafetyViolation('state machine safety', `node ${nodeId} applies entry ${e.index} term ${e.term}, node ${prior.by} applied term ${prior.term} there`);
    }
  }

  private crossCheck(index: number, term: number, data: Uint8Array, who: string): void {
    const c = this.committed.get(index);
    if (c !== undefined && (c.term !== term || !sameBytes(c.data, data))) {
      throw new SafetyViolation('state machine safety', `${who} entry ${index} term ${term}, but term ${c.term} was committed there in term ${c.inTerm}`);
    }
    const a = this.applied.get(index);
    if (a !== undefined && (a.term !== term || !sameBytes(a.data, data))) {
      throw new SafetyViolation('state machine safety', `${who} entry ${index} term ${term}, but node ${a.by} applied term ${a.term} there`);
    }
  }

  get appliedCount(): number {
    return this.applied.size;
  }
}
