import { assert } from '@tw/errors';
import { decodeConfChange } from './conf-change.js';
import { raftErrors } from './errors.js';
import {
  INFLIGHT_BYTES_MAX,
  INFLIGHT_MSGS_MAX,
  MAX_COMMITTED_SIZE_PER_READY_BYTES,
  MAX_SIZE_PER_MSG_BYTES,
  MAX_UNCOMMITTED_ENTRIES_BYTES,
  OUTBOX_MESSAGES_MAX,
  PROPOSAL_BATCH_ENTRIES_MAX,
  READ_INDEX_PENDING_MAX,
} from './limits.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { ReadOnly } from './read-only.js';
import {
  ConfChangeType,
  EntryType,
  MessageType,
  NONE,
  ProgressState,
  StateType,
  newMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type PlantedBugs,
  type RaftComponents,
  type RaftConfig,
  type RaftLogger,
  type RandomSource,
  type ReadOnlyOption,
  type ReadState,
  type Snapshot,
  type SoftState,
} from './types.js';

/** The context bytes of a vote request made on leadership transfer (bypasses leases). */
const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

type CampaignKind = 'pre-election' | 'election' | 'transfer';

enum VoteResult {
  Pending,
  Won,
  Lost,
}

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

const silentLogger: RaftLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function payloadBytes(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.byteLength;
  return s;
}

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function voteRespType(t: MessageType): MessageType {
  return t === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
}

/**
 * The raft state machine (etcd's `raft` struct), single-server membership changes only. Driven by
 * {@link RawNode}; not exported from the package.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  /** Progress of every member (voters and learners), self included. */
  readonly prs = new Map<NodeId, Progress>();
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  state: StateType = StateType.Follower;
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = NONE;
  leadTransferee: NodeId = NONE;
  /** Index of the last conf change proposed by this leader; a new one waits until it is applied. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  /** ReadIndex requests received before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  /** Leader: new entries were appended; broadcast them when the Ready is collected (batching). */
  appendPending = false;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  /** Planted bug countVotesFromOldTerms only: every grant received in earlier elections. */
  private readonly bugOldGrants = new Set<NodeId>();

  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly disableProposalForwarding: boolean;
  readonly stepDownOnRemoval: boolean;
  readonly maxMsgSize: number;
  readonly maxCommittedSizePerReady: number;
  readonly maxUncommittedSize: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  readonly bugs: PlantedBugs;
  private readonly random: RandomSource;
  readonly logger: RaftLogger;

  constructor(c: RaftConfig, components: RaftComponents) {
    validateConfig(c);
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.readOnlyOption = c.readOnlyOption ?? 'safe';
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.stepDownOnRemoval = c.stepDownOnRemoval ?? true;
    this.maxMsgSize = c.maxSizePerMsg ?? MAX_SIZE_PER_MSG_BYTES;
    this.maxCommittedSizePerReady = c.maxCommittedSizePerReady ?? MAX_COMMITTED_SIZE_PER_READY_BYTES;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? MAX_UNCOMMITTED_ENTRIES_BYTES;
    this.maxInflightMsgs = c.maxInflightMsgs ?? INFLIGHT_MSGS_MAX;
    this.maxInflightBytes = c.maxInflightBytes ?? INFLIGHT_BYTES_MAX;
    this.bugs = c.plantedBugs ?? {};
    this.random = components.random;
    this.logger = components.logger ?? silentLogger;
    this.raftLog = new RaftLog(components.storage);
    this.raftLog.onTruncate = (fromIndex) => this.dropUnpersistedAcks(fromIndex);

    const { hardState, confState } = components.storage.initialState();
    this.applyConfState(confState);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) {
      // The application applied only committed entries; the hard state's commit may lag (it is not
      // synced on its own), so what was applied is known committed.
      if (c.applied > this.raftLog.committed && c.applied <= this.raftLog.lastIndex()) this.raftLog.committed = c.applied;
      this.raftLog.appliedTo(c.applied);
    }
    this.becomeFollower(this.term, NONE);
  }

  // ------------------------------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  private loadState(hs: HardState): void {
    assert(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      () => `hard state commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  private applyConfState(cs: ConfState): void {
    this.memberIdsCache = undefined;
    this.voters.clear();
    this.learners.clear();
    this.prs.clear();
    const next = this.raftLog.lastIndex() + 1;
    for (const id of cs.voters) {
      this.voters.add(id);
      this.prs.set(id, this.newProgress(next, false));
    }
    for (const id of cs.learners) {
      assert(!this.voters.has(id), () => `node ${id} is both voter and learner`);
      this.learners.add(id);
      this.prs.set(id, this.newProgress(next, true));
    }
    this.isLearner = this.learners.has(this.id);
  }

  private newProgress(next: number, isLearner: boolean): Progress {
    return new Progress(next, isLearner, this.maxInflightMsgs, this.maxInflightBytes);
  }

  private memberIdsCache: NodeId[] | undefined;

  /** Sorted member ids (deterministic iteration order for traces and the simulator). */
  private memberIds(): NodeId[] {
    this.memberIdsCache ??= [...this.prs.keys()].sort((a, b) => a - b);
    return this.memberIdsCache;
  }

  private quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  private readonly matchScratch: number[] = [];

  /** The largest index replicated on a quorum of voters. */
  private committedIndexByQuorum(): number {
    if (this.voters.size === 0) return Infinity;
    const matches = this.matchScratch;
    matches.length = 0;
    for (const id of this.voters) matches.push(this.prs.get(id)?.match ?? 0);
    matches.sort((a, b) => a - b);
    return matches[matches.length - this.quorum()]!;
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === this.id || this.prs.get(id)?.recentActive === true) active++;
    }
    return active >= this.quorum();
  }

  // ------------------------------------------------------------------------------------------
  // Sending
  // ------------------------------------------------------------------------------------------

  private send(f: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    const t = f.type;
    let term = f.term ?? 0;
    if (t === MessageType.Vote || t === MessageType.VoteResp || t === MessageType.PreVote || t === MessageType.PreVoteResp) {
      // Vote messages carry the term they are about (a pre-vote's future term); set by the caller.
      assert(term !== 0, () => `term must be set for ${t}`);
    } else {
      assert(f.term === undefined, () => `term should not be set for ${t}`);
      // Proposals and read requests forwarded to the leader carry no term (treated as local there).
      if (t !== MessageType.Prop && t !== MessageType.ReadIndex) term = this.term;
    }
    if (this.msgs.length >= OUTBOX_MESSAGES_MAX) {
      // The application has not collected a Ready for a long time: shed the message (Raft
      // tolerates loss; heartbeats and probes resend what matters) instead of growing without bound.
      this.logger.warn(`${this.id} outbox full (${OUTBOX_MESSAGES_MAX} messages): dropping ${t} to ${f.to}`);
      return;
    }
    // One object literal with every field: a stable shape, no spreads on the hot path.
    this.msgs.push({
      type: t,
      to: f.to,
      from: this.id,
      term,
      logTerm: f.logTerm ?? 0,
      index: f.index ?? 0,
      entries: f.entries ?? NO_ENTRIES,
      commit: f.commit ?? 0,
      reject: f.reject ?? false,
      rejectHint: f.rejectHint ?? 0,
      snapshot: f.snapshot,
      context: f.context,
    });
  }

  /** Sends an append (or a snapshot) to `to` if flow control allows; true when something was sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    const ents = prevTerm === undefined ? undefined : this.raftLog.slice(pr.next, this.raftLog.lastIndex() + 1, this.maxMsgSize);
    if (prevTerm === undefined || ents === undefined) {
      // The entries were compacted: send a snapshot, but only to a follower that is responsive.
      if (!pr.recentActive) {
        this.logger.debug(`${this.id} not sending snapshot to ${to}: not recently active`);
        return false;
      }
      let snap: Snapshot;
      try {
        snap = this.raftLog.snapshot();
      } catch (err) {
        if (raftErrors.is(err, 'TW_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE')) return false;
        throw err;
      }
      assert(snap.metadata.index !== 0, 'need a non-empty snapshot');
      this.send({ type: MessageType.Snap, to, snapshot: snap });
      pr.becomeSnapshot(snap.metadata.index);
      this.logger.debug(`${this.id} sent snapshot at ${snap.metadata.index} to ${to}`);
      return true;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed });
    const last = ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex;
    pr.sentEntries(ents.length, payloadBytes(ents), last);
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(this.raftLog.committed, last));
    return true;
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Leader: sends appends to every follower. */
  bcastAppend(): void {
    for (const id of this.memberIds()) if (id !== this.id) this.sendAppend(id);
  }

  /** Leader: sends what was appended since the last flush, as few messages as flow control allows. */
  flushAppends(): void {
    if (!this.appendPending) return;
    this.appendPending = false;
    if (this.state !== StateType.Leader) return;
    for (const id of this.memberIds()) {
      if (id === this.id) continue;
      // Replicate state pipelines several size-limited messages; probe state sends one.
      for (let n = 0; n < this.maxInflightMsgs && this.maybeSendAppend(id, false); n++);
    }
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.prs.get(to)!;
    // A follower may not have the leader's whole log: never tell it to commit past its match.
    const commit = Math.min(pr.match, this.raftLog.committed);
    pr.sentCommit = Math.max(pr.sentCommit, commit);
    this.send({ type: MessageType.Heartbeat, to, commit, ...(ctx === undefined ? {} : { context: ctx }) });
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.memberIds()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ------------------------------------------------------------------------------------------
  // Commit and append
  // ------------------------------------------------------------------------------------------

  /** Advances the commit index by counting replicas; true when it moved. */
  maybeCommit(): boolean {
    const mci = this.committedIndexByQuorum();
    if (mci === Infinity) return false;
    if (this.bugs.commitPreviousTermByCounting === true) {
      // PLANTED BUG (testing only): commits entries of earlier terms by counting (paper Figure 8).
      if (mci > this.raftLog.committed) {
        this.raftLog.commitTo(mci);
        return true;
      }
      return false;
    }
    return this.raftLog.maybeCommit(mci, this.term);
  }

  private appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    const stamped: Entry[] = es.map((e, i) => ({ index: li + 1 + i, term: this.term, type: e.type, data: e.data }));
    if (!this.increaseUncommittedSize(stamped)) {
      this.logger.debug(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    li = this.raftLog.append(stamped);
    // The leader counts its own copy at once; the application persists it before sending the
    // MsgApp of the same Ready, so no follower acknowledges an entry the leader may lose.
    this.prs.get(this.id)?.maybeUpdate(li);
    this.maybeCommit();
    this.appendPending = true;
    return true;
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadBytes(ents);
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== StateType.Leader) return;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadBytes(ents));
  }

  // ------------------------------------------------------------------------------------------
  // Roles
  // ------------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    const last = this.raftLog.lastIndex();
    for (const [id, old] of this.prs) {
      const pr = this.newProgress(last + 1, old.isLearner);
      if (id === this.id) pr.match = last;
      this.prs.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
    this.appendPending = false;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random.int(this.electionTimeout);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither term nor vote: it only asks whether it could win.
    this.votes = new Map();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    assert(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.prs.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively assume the log may hold an unapplied conf change.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The empty entry of this term lets the leader commit (and so learn) everything before it.
    const ok = this.appendEntry([{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    assert(ok, 'empty entry was dropped');
    // The empty entry does not count against the uncommitted size limit.
    this.uncommittedSize = 0;
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  /** Whether this node may become leader: a voter with no snapshot waiting to be persisted. */
  promotable(): boolean {
    const pr = this.prs.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const ents = this.raftLog.slice(Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex()), this.raftLog.committed + 1, Infinity) ?? [];
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private hup(kind: CampaignKind): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and cannot campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(`${this.id} cannot campaign at term ${this.term}: pending configuration changes to apply`);
      return;
    }
    this.campaign(kind);
  }

  private campaign(kind: CampaignKind): void {
    let voteMsg: MessageType;
    let term: number;
    // PLANTED BUG (testing only): grants this node received in earlier elections are kept and
    // counted again in the new term.
    const carried = this.bugs.countVotesFromOldTerms === true ? [...this.bugOldGrants] : [];
    if (kind === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
      for (const id of carried) this.votes.set(id, true);
    }
    if (this.poll(this.id, voteRespType(voteMsg), true) === VoteResult.Won) {
      // A single-voter cluster wins at once.
      if (kind === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of [...this.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send({
        type: voteMsg,
        to: id,
        term,
        index: this.raftLog.lastIndex(),
        logTerm: this.raftLog.lastTerm(),
        ...(kind === 'transfer' ? { context: CAMPAIGN_TRANSFER } : {}),
      });
    }
  }

  private poll(id: NodeId, t: MessageType, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    if (this.bugs.countVotesFromOldTerms === true && granted && t === MessageType.VoteResp) this.bugOldGrants.add(id);
    let yes = 0;
    let no = 0;
    for (const v of this.voters) {
      const r = this.votes.get(v);
      if (r === true) yes++;
      else if (r === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return VoteResult.Won;
    if (no > this.voters.size - q) return VoteResult.Lost;
    return VoteResult.Pending;
  }

  // ------------------------------------------------------------------------------------------
  // Ticks
  // ------------------------------------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ------------------------------------------------------------------------------------------
  // Step
  // ------------------------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: ignore the vote (it
          // comes from a node that was partitioned away and would disrupt the cluster).
          this.logger.info(`${this.id} [term ${this.term}] ignored ${m.type} from ${m.from} [term ${m.term}]: lease is not expired`);
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a PreVote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The future term of a granted pre-vote: the term moves when we actually campaign.
      } else {
        if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) this.becomeFollower(m.term, m.from);
        else this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A leader from an old term (e.g. partitioned, its term never advanced) learns of the new
        // term and steps down; without this it could stay stuck with check-quorum or pre-vote.
        this.send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
      } else if (this.bugs.countVotesFromOldTerms === true && m.type === MessageType.VoteResp && !m.reject && this.state === StateType.Candidate) {
        // PLANTED BUG (testing only): a stale vote grant from an earlier election is counted.
        this.stepCandidate(m);
        return;
      } else {
        this.logger.debug(`${this.id} [term ${this.term}] ignored ${m.type} from ${m.from} [term ${m.term}]`);
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // The grant carries the candidate's term (for a pre-vote, the future one), so the
          // candidate can tell it apart from a stale answer.
          this.send({ type: voteRespType(m.type), to: m.from, term: m.term });
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        break;
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        return;
      case StateType.Follower:
        this.stepFollower(m);
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.Prop: {
        assert(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
        if (!this.prs.has(this.id)) throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', 'this leader was removed from the membership', { details: { id: this.id } });
        if (this.leadTransferee !== NONE) {
          throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', `leadership transfer to ${this.leadTransferee} in progress`, { details: { id: this.id } });
        }
        if (m.entries.length > PROPOSAL_BATCH_ENTRIES_MAX) {
          throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', `proposal batch of ${m.entries.length} entries exceeds ${PROPOSAL_BATCH_ENTRIES_MAX}`);
        }
        const ents = m.entries.map((e, i): Entry => {
          if (e.type !== EntryType.ConfChange) return e;
          // One membership change at a time: a second one before the first is applied becomes a no-op.
          if (this.pendingConfIndex > this.raftLog.applied) {
            this.logger.info(`${this.id} ignoring conf change at ${i}: previous one at ${this.pendingConfIndex} not applied (applied ${this.raftLog.applied})`);
            return { index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) };
          }
          // And only once this leader committed an entry of its own term: otherwise an uncommitted
          // change of an earlier leader could still commit, and two single-server changes made from
          // different bases could form disjoint majorities (Ongaro, raft-dev, 2015).
          if (!this.committedEntryInCurrentTerm()) {
            this.logger.info(`${this.id} ignoring conf change: no entry of term ${this.term} committed yet`);
            return { index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) };
          }
          this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
          return e;
        });
        if (!this.appendEntry(ents)) throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', 'uncommitted entries exceed the size limit', { details: { id: this.id } });
        return;
      }
      case MessageType.ReadIndex: {
        if (this.voters.size === 1 && this.voters.has(this.id)) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        if (!this.committedEntryInCurrentTerm()) {
          // Until an entry of this term commits, the leader's commit index may be behind what
          // an earlier leader committed: wait.
          if (this.pendingReadIndexMessages.length < READ_INDEX_PENDING_MAX) this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
      }
      default:
        break;
    }

    const pr = this.prs.get(m.from);
    if (pr === undefined) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // A full window that only lost messages would otherwise stall this follower for good.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (this.readOnlyOption !== 'safe' || m.context === undefined || m.context.byteLength === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === undefined) return;
        let voterAcks = 0;
        for (const id of acks) if (this.voters.has(id)) voterAcks++;
        if (voterAcks < this.quorum()) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (!m.reject) {
          pr.becomeProbe();
        } else {
          // Sending failed: probe again after the next heartbeat response.
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
          pr.msgAppFlowPaused = true;
        }
        return;
      case MessageType.Unreachable:
        // A MsgApp may have been lost: go back to probing.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case MessageType.TransferLeader: {
        if (pr.isLearner) {
          this.logger.debug(`${this.id} ignored transfer to learner ${m.from}`);
          return;
        }
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
      if (pr.state === ProgressState.Probe) {
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
        // The follower caught up past the snapshot by appends: resume replication.
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Replicate) {
        pr.inflights.freeLE(m.index);
      }
      if (this.maybeCommit()) {
        this.releasePendingReadIndexMessages();
        this.bcastAppend();
      } else if (m.from !== this.id && pr.sentCommit < this.raftLog.committed) {
        // The follower may not know the commit index yet: tell it (an empty MsgApp if need be).
        this.sendAppend(m.from);
      }
      if (m.from !== this.id) {
        for (let n = 0; n < this.maxInflightMsgs && this.maybeSendAppend(m.from, false); n++);
      }
      if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
        this.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after it caught up`);
        this.sendTimeoutNow(m.from);
      }
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', `no leader at term ${this.term}`, { details: { id: this.id } });
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        this.logger.debug(`${this.id} ignored MsgTimeoutNow from ${m.from} as a candidate`);
        return;
      default:
        break;
    }
    if (m.type !== myVoteResp) return;
    const res = this.poll(m.from, m.type, !m.reject);
    if (res === VoteResult.Won) {
      if (this.state === StateType.PreCandidate) {
        this.campaign('election');
      } else {
        this.becomeLeader();
        this.bcastAppend();
        this.appendPending = false;
      }
    } else if (res === VoteResult.Lost) {
      // A pre-candidate that lost goes back to follower at its (unchanged) term.
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', `no leader at term ${this.term}`, { details: { id: this.id } });
        if (this.disableProposalForwarding) throw raftErrors.create('TW_RAFT_PROPOSAL_DROPPED', 'proposal forwarding is disabled', { details: { id: this.id } });
        this.msgs.push({ ...m, to: this.lead, from: this.id });
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping leader transfer`);
          return;
        }
        this.msgs.push({ ...m, to: this.lead, term: this.term });
        return;
      case MessageType.TimeoutNow:
        this.logger.info(`${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from}, starting election`);
        // Leadership transfer skips pre-vote and leases: the old leader asked for it.
        this.hup('transfer');
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
          return;
        }
        this.msgs.push({ ...m, to: this.lead, from: m.from === NONE ? this.id : m.from });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed });
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew });
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm, so the leader
    // can skip a whole term of mismatching entries per round trip.
    const [hintIndex, hintTerm] = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    this.send({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send({ type: MessageType.HeartbeatResp, to: m.from, ...(m.context === undefined ? {} : { context: m.context }) });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (this.restore(s)) {
      this.logger.info(`${this.id} restored snapshot at ${s.metadata.index} term ${s.metadata.term}`);
      this.send({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed });
    }
  }

  /**
   * Entries from `fromIndex` on are being replaced before they were persisted: acknowledgements of
   * them still waiting in the outbox would promise entries that will never be on disk (a stale
   * leader could count them), so they are withdrawn. Dropping an acknowledgement is always safe.
   */
  private dropUnpersistedAcks(fromIndex: number): void {
    if (this.msgs.length === 0) return;
    this.msgs = this.msgs.filter((m) => !(m.type === MessageType.AppResp && !m.reject && m.index >= fromIndex));
  }

  /** Installs a snapshot from the leader; false when it is stale or already covered by the log. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Defence in depth: only a follower accepts snapshots.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      this.logger.warn(`${this.id} attempted to restore snapshot but it is not in the ConfState`);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // Our log already has the snapshot's last entry: just fast-forward the commit index.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.dropUnpersistedAcks(this.raftLog.committed + 1);
    this.raftLog.restore(s);
    this.applyConfState(cs);
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Reads and transfer
  // ------------------------------------------------------------------------------------------

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.term(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnlyOption === 'leaseBased') {
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    if (this.readOnly.size >= READ_INDEX_PENDING_MAX) {
      this.logger.warn(`${this.id} dropping ReadIndex: ${READ_INDEX_PENDING_MAX} pending`);
      return;
    }
    // Safe: record the commit index, then confirm we are still leader with a heartbeat round.
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeatWithCtx(m.context);
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    const ctx = req.context ?? new Uint8Array(0);
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: ctx });
      return;
    }
    this.send({ type: MessageType.ReadIndexResp, to: req.from, index: readIndex, context: ctx });
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: MessageType.TimeoutNow, to });
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ------------------------------------------------------------------------------------------
  // Membership
  // ------------------------------------------------------------------------------------------

  /**
   * Applies one committed single-server change. Invalid changes (demoting a voter to learner,
   * removing the last voter) are ignored, identically on every node, since the entry is committed.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const id = cc.nodeId;
    this.memberIdsCache = undefined;
    // A new member is probed from the last entry, so the first MsgApp carries something.
    const next = Math.max(this.raftLog.lastIndex(), 1);
    switch (cc.type) {
      case ConfChangeType.AddNode: {
        if (this.voters.has(id)) break;
        const pr = this.prs.get(id);
        this.learners.delete(id);
        this.voters.add(id);
        if (pr === undefined) {
          const np = this.newProgress(next, false);
          // A new member counts as active so check-quorum does not fire before it answers.
          np.recentActive = true;
          this.prs.set(id, np);
        } else {
          pr.isLearner = false;
        }
        break;
      }
      case ConfChangeType.AddLearnerNode: {
        if (this.voters.has(id)) {
          this.logger.warn(`${this.id} ignoring conf change: demoting voter ${id} to learner is not supported`);
          break;
        }
        if (this.learners.has(id)) break;
        this.learners.add(id);
        const np = this.newProgress(next, true);
        np.recentActive = true;
        this.prs.set(id, np);
        break;
      }
      case ConfChangeType.RemoveNode: {
        if (this.voters.has(id) && this.voters.size === 1) {
          this.logger.warn(`${this.id} ignoring conf change: removing the last voter ${id}`);
          break;
        }
        this.voters.delete(id);
        this.learners.delete(id);
        this.prs.delete(id);
        break;
      }
    }
    this.isLearner = this.learners.has(this.id);
    if (this.state === StateType.Leader) {
      if (!this.prs.has(this.id) || this.isLearner) {
        if (this.stepDownOnRemoval) {
          this.becomeFollower(this.term, NONE);
          return this.confState();
        }
      }
      if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
      // The quorum may have shrunk: commit what it now allows, and start replicating to new members.
      if (this.maybeCommit()) {
        this.bcastAppend();
      } else {
        for (const pid of this.memberIds()) if (pid !== this.id) this.maybeSendAppend(pid, false);
      }
    }
    return this.confState();
  }

  /** Decodes the data of a ConfChange entry (helper for the application's apply loop). */
  static decodeConfChange(e: Entry): ConfChange {
    return decodeConfChange(e.data);
  }
}

function validateConfig(c: RaftConfig): void {
  const bad = (field: string, why: string): never => {
    throw raftErrors.create('TW_RAFT_BAD_CONFIG', `raft config ${field}: ${why}`, { details: { field } });
  };
  if (!Number.isSafeInteger(c.id) || c.id <= 0) bad('id', 'must be a positive integer');
  if (!Number.isInteger(c.heartbeatTick) || c.heartbeatTick <= 0) bad('heartbeatTick', 'must be a positive integer');
  if (!Number.isInteger(c.electionTick) || c.electionTick <= c.heartbeatTick) bad('electionTick', 'must be greater than heartbeatTick');
  if (c.maxInflightMsgs !== undefined && (!Number.isInteger(c.maxInflightMsgs) || c.maxInflightMsgs <= 0)) bad('maxInflightMsgs', 'must be a positive integer');
  if (c.maxInflightBytes !== undefined && c.maxInflightBytes < 0) bad('maxInflightBytes', 'must not be negative');
  if (c.readOnlyOption === 'leaseBased' && c.checkQuorum !== true) bad('readOnlyOption', "'leaseBased' requires checkQuorum");
}
