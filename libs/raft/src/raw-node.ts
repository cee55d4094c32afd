import { assert } from '@tw/errors';
import { encodeConfChange } from './conf-change.js';
import { raftErrors } from './errors.js';
import { Raft } from './raft.js';
import {
  EntryType,
  MessageType,
  NONE,
  SnapshotStatus,
  isLocalMessage,
  isResponseMessage,
  newMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftComponents,
  type RaftConfig,
  type RawNodeApi,
  type Ready,
  type SoftState,
  type Status,
} from './types.js';

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.raftState === b.raftState;
}

interface Accepted {
  readonly lastEntry: Entry | undefined;
  readonly snapshotIndex: number;
  readonly committedEntries: readonly Entry[];
}

/**
 * The single-threaded raft node (etcd's RawNode). Feed it ticks, peer messages and proposals;
 * collect a {@link Ready} when `hasReady()`, handle it as its documentation says (persist, then
 * send, then apply), and call `advance()`. `ready()` may not be called again before `advance()`.
 */
export class RawNode implements RawNodeApi {
  /** The state machine; exposed for tests and the simulator's checkers (read-only use). */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private accepted: Accepted | undefined;

  constructor(config: RaftConfig, components: RaftComponents) {
    this.raft = new Raft(config, components);
    this.prevSoftState = this.raft.softState();
    // A restarted node's hard state is already durable: do not emit it again.
    this.prevHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  propose(data: Uint8Array): void {
    this.raft.step(newMessage({ type: MessageType.Prop, from: this.raft.id, entries: [{ index: 0, term: 0, type: EntryType.Normal, data }] }));
  }

  /** Proposes several entries in one step (one append, replicated together). */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    const entries = datas.map((data): Entry => ({ index: 0, term: 0, type: EntryType.Normal, data }));
    this.raft.step(newMessage({ type: MessageType.Prop, from: this.raft.id, entries }));
  }

  proposeConfChange(cc: ConfChange): void {
    this.raft.step(
      newMessage({ type: MessageType.Prop, from: this.raft.id, entries: [{ index: 0, term: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }] }),
    );
  }

  /**
   * Steps a message received from a peer. Local-only types are refused (TW_RAFT_STEP_LOCAL_MSG);
   * responses from non-members are ignored. A forwarded proposal that the leader drops is
   * dropped silently (the proposer retries on its own timeout).
   */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw raftErrors.create('TW_RAFT_STEP_LOCAL_MSG', `cannot step local message ${m.type}`);
    if (isResponseMessage(m.type) && !this.raft.prs.has(m.from) && this.raft.prs.size > 0 && m.type !== MessageType.ReadIndexResp) {
      // etcd returns ErrStepPeerNotFound; ignoring keeps the application loop simple.
      return;
    }
    try {
      this.raft.step(m);
    } catch (err) {
      if (raftErrors.is(err, 'TW_RAFT_PROPOSAL_DROPPED') && m.from !== this.raft.id) return;
      throw err;
    }
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  readIndex(requestCtx: Uint8Array): void {
    this.raft.step(newMessage({ type: MessageType.ReadIndex, context: requestCtx }));
  }

  transferLeader(transferee: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.TransferLeader, from: transferee }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.Unreachable, from: id }));
  }

  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(newMessage({ type: MessageType.SnapStatus, from: id, reject: status === SnapshotStatus.Failure }));
  }

  hasReady(): boolean {
    const r = this.raft;
    if (this.accepted !== undefined) return false;
    if (r.appendPending && r.state === 'StateLeader') return true;
    if (!softStateEqual(r.softState(), this.prevSoftState)) return true;
    if (!hardStateEqual(r.hardState(), this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.entries.length > 0) return true;
    return r.raftLog.hasNextCommittedEnts();
  }

  ready(): Ready {
    assert(this.accepted === undefined, 'ready() called twice without advance()');
    const r = this.raft;
    r.flushAppends();
    const soft = r.softState();
    const hard = r.hardState();
    const entries = r.raftLog.unstableEntries();
    const snapshot = r.raftLog.unstable.snapshot;
    const committedEntries = r.raftLog.nextCommittedEnts(r.maxCommittedSizePerReady);
    const hardChanged = !hardStateEqual(hard, this.prevHardState);
    const rd: { -readonly [K in keyof Ready]: Ready[K] } = {
      readStates: r.readStates,
      entries,
      committedEntries,
      messages: r.msgs,
      mustSync: entries.length > 0 || snapshot !== undefined || hard.term !== this.prevHardState.term || hard.vote !== this.prevHardState.vote,
    };
    if (!softStateEqual(soft, this.prevSoftState)) rd.softState = soft;
    if (hardChanged) rd.hardState = hard;
    if (snapshot !== undefined) rd.snapshot = snapshot;
    r.msgs = [];
    r.readStates = [];
    this.prevSoftState = soft;
    if (hardChanged) this.prevHardState = hard;
    const last = committedEntries[committedEntries.length - 1];
    if (last !== undefined) r.raftLog.applying = last.index;
    this.accepted = { lastEntry: entries[entries.length - 1], snapshotIndex: snapshot?.metadata.index ?? 0, committedEntries };
    return rd;
  }

  /** The previous Ready was handled (persisted, sent, applied). */
  advance(): void {
    const acc = this.accepted;
    assert(acc !== undefined, 'advance() without ready()');
    this.accepted = undefined;
    const r = this.raft;
    if (acc.snapshotIndex > 0) r.raftLog.stableSnapTo(acc.snapshotIndex);
    if (acc.lastEntry !== undefined) r.raftLog.stableTo(acc.lastEntry.index, acc.lastEntry.term);
    const lastCommitted = acc.committedEntries[acc.committedEntries.length - 1];
    if (lastCommitted !== undefined) {
      r.raftLog.appliedTo(lastCommitted.index);
      r.reduceUncommittedSize(acc.committedEntries);
    } else if (acc.snapshotIndex > r.raftLog.applied && acc.snapshotIndex <= r.raftLog.committed) {
      r.raftLog.appliedTo(acc.snapshotIndex);
    }
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map(r.state === 'StateLeader' ? [...r.prs].map(([id, pr]) => [id, pr.toStatus()] as const) : []);
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      progress,
      leadTransferee: r.leadTransferee,
      confState: r.confState(),
    };
  }

  /** The leader this node knows of, or NONE. */
  get lead(): NodeId {
    return this.raft.lead === NONE ? NONE : this.raft.lead;
  }
}

/** Factory form of `new RawNode(config, components)`. */
export function createRawNode(config: RaftConfig, components: RaftComponents): RawNode {
  return new RawNode(config, components);
}
