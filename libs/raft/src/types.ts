/**
 * The data types of @tw/raft, modelled on etcd's raftpb and RawNode (go.etcd.io/raft/v3).
 *
 * The library is a pure, single-threaded state machine: no timers, sockets, disk or clock. Time is
 * a count of `tick()` calls; randomness comes from an injected {@link RandomSource}; the log is read
 * through {@link Storage}; everything the node wants done comes out of `ready()` as a {@link Ready}.
 *
 * STABILITY: other packages (the deterministic simulator in @tw/testkit, the LevelDB storage in
 * @tw/raft-storage-level) are written against these declarations. Add fields and members; do not
 * rename or remove them.
 *
 * Node ids are positive safe integers; {@link NONE} (0) means "no node". Ids are never reused.
 * Indexes and terms are non-negative safe integers; index 0 / term 0 is the empty log's origin.
 */

/** "No node" (no leader known, no vote cast). */
export const NONE = 0;

/** A node id: a positive safe integer, never reused for a different server. */
export type NodeId = number;

// ----------------------------------------------------------------------------------------------
// Log entries
// ----------------------------------------------------------------------------------------------

export enum EntryType {
  /** Application data (an empty `data` is the no-op a new leader appends). */
  Normal = 'EntryNormal',
  /** `data` is an encoded {@link ConfChange} (see `encodeConfChange` / `decodeConfChange`). */
  ConfChange = 'EntryConfChange',
}

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Owned by the log once proposed: callers must not mutate it afterwards. */
  readonly data: Uint8Array;
}

// ----------------------------------------------------------------------------------------------
// Persistent and volatile state
// ----------------------------------------------------------------------------------------------

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  /** The node voted for in `term`, or {@link NONE}. */
  readonly vote: NodeId;
  /** The highest index known committed (persisting it is an optimisation, never a safety need). */
  readonly commit: number;
}

export enum StateType {
  Follower = 'StateFollower',
  Candidate = 'StateCandidate',
  Leader = 'StateLeader',
  PreCandidate = 'StatePreCandidate',
}

/** Volatile state, reported in a Ready when it changes; never persisted. */
export interface SoftState {
  /** The leader this node knows of, or {@link NONE}. */
  readonly lead: NodeId;
  readonly raftState: StateType;
}

/** The membership: who votes and who only receives the log. A node is in at most one list. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  /** The membership as of `index`. */
  readonly confState: ConfState;
  /** Last log index the snapshot covers. */
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The application's state machine image; opaque to raft. */
  readonly data: Uint8Array;
}

// ----------------------------------------------------------------------------------------------
// Membership changes (single-server, with learners; no joint consensus)
// ----------------------------------------------------------------------------------------------

export enum ConfChangeType {
  /** Adds a voter, or promotes an existing learner to voter. */
  AddNode = 'ConfChangeAddNode',
  /** Adds a learner (receives the log, does not vote or count for commit). Demoting a voter is refused. */
  AddLearnerNode = 'ConfChangeAddLearnerNode',
  /** Removes a voter or learner. */
  RemoveNode = 'ConfChangeRemoveNode',
}

/**
 * One single-server membership change. Proposed with `proposeConfChange`, it travels as an
 * {@link EntryType.ConfChange} entry and takes effect on each node when the application, having
 * applied the committed entry, calls `applyConfChange`. Only one change may be pending (proposed
 * and not yet applied by the leader) at a time, and only after the leader committed an entry of
 * its own term; otherwise the change is turned into an empty normal entry (dropped).
 */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque application context (e.g. the new node's address); may be empty. */
  readonly context: Uint8Array;
}

// ----------------------------------------------------------------------------------------------
// Messages
// ----------------------------------------------------------------------------------------------

export enum MessageType {
  /** Local: start an election (campaign). */
  Hup = 'MsgHup',
  /** Local: leader sends heartbeats. */
  Beat = 'MsgBeat',
  /** Proposal of entries (local, or forwarded by a follower to its leader). */
  Prop = 'MsgProp',
  /** Append entries (leader -> follower). */
  App = 'MsgApp',
  AppResp = 'MsgAppResp',
  Vote = 'MsgVote',
  VoteResp = 'MsgVoteResp',
  Snap = 'MsgSnap',
  Heartbeat = 'MsgHeartbeat',
  HeartbeatResp = 'MsgHeartbeatResp',
  /** Local: the transport reports a peer unreachable (leader slows to probing). */
  Unreachable = 'MsgUnreachable',
  /** Local: the application reports the outcome of sending a snapshot (`reject` = failed). */
  SnapStatus = 'MsgSnapStatus',
  /** Local: leader checks it heard from a quorum within an election timeout. */
  CheckQuorum = 'MsgCheckQuorum',
  /** Leadership transfer request (local, or forwarded to the leader); `from` is the transferee. */
  TransferLeader = 'MsgTransferLeader',
  /** Leader tells the transferee to campaign at once, bypassing lease and pre-vote. */
  TimeoutNow = 'MsgTimeoutNow',
  ReadIndex = 'MsgReadIndex',
  ReadIndexResp = 'MsgReadIndexResp',
  PreVote = 'MsgPreVote',
  PreVoteResp = 'MsgPreVoteResp',
}

/**
 * A raft message. Fields that a type does not use are zero / empty. `entries` and `snapshot` are
 * shared with the log: a transport serialises them, never mutates them.
 */
export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  /** Sender's term (0 for local messages and proposals). For PreVote: the term it would campaign at. */
  readonly term: number;
  /** App: term of the entry at `index`. Vote/PreVote: term of the candidate's last entry. */
  readonly logTerm: number;
  /** App: index preceding `entries`. AppResp: the follower's match (or the rejected) index. Vote: candidate's last index. */
  readonly index: number;
  readonly entries: readonly Entry[];
  /** Leader's commit index (App, Heartbeat). */
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  /** AppResp rejection: the follower's hint of where its log may match. */
  readonly rejectHint: number;
  /** Heartbeat/ReadIndex: the read request context; Vote: the campaign kind (transfer). */
  readonly context?: Uint8Array;
}

// ----------------------------------------------------------------------------------------------
// Reads and Ready
// ----------------------------------------------------------------------------------------------

/** A confirmed linearizable read: serve `requestCtx`'s read once applied index >= `index`. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

/**
 * What the node wants done. The application handles one Ready at a time, in this order, then calls
 * `advance()`:
 *
 * 1. PERSIST: if `snapshot` is set, install it in storage (`applySnapshot`); append `entries` to
 *    storage (an entry at index i first discards every persisted entry with index >= i); write
 *    `hardState` if set. When `mustSync` is true these writes must be durable (fsync'd) before
 *    step 2.
 * 2. SEND `messages`, only after step 1 is durable: a vote, an append acknowledgement or a
 *    commit index sent before its state is on disk can lose committed data after a crash.
 *    Messages may be dropped, duplicated or reordered; raft tolerates that. After sending a
 *    MsgSnap, report the outcome with `reportSnapshot`.
 * 3. APPLY `snapshot` (if any) then `committedEntries` to the state machine, in order; for a
 *    ConfChange entry call `applyConfChange` with the decoded change. Serve `readStates` once
 *    the applied index reaches each one's `index`.
 * 4. Call `advance()`.
 *
 * `committedEntries` can include entries that are in this same Ready's `entries` (not yet
 * persisted here): apply them only after step 1.
 */
export interface Ready {
  /** Set when leader or role changed since the last Ready. */
  readonly softState?: SoftState;
  /** Set when term, vote or commit changed since the last Ready; persist before sending. */
  readonly hardState?: HardState;
  readonly readStates: readonly ReadState[];
  /** Entries to persist (append) before sending messages. */
  readonly entries: readonly Entry[];
  /** A snapshot to persist and apply (received from the leader). */
  readonly snapshot?: Snapshot;
  /** Committed entries to apply to the state machine. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send after persisting. */
  readonly messages: readonly Message[];
  /** Whether the writes of step 1 must be synced to disk before sending (false: nothing to persist). */
  readonly mustSync: boolean;
}

// ----------------------------------------------------------------------------------------------
// Storage
// ----------------------------------------------------------------------------------------------

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

/**
 * The log as the application has persisted it (etcd's Storage). Raft only reads through it; the
 * application writes to it while handling a Ready. Methods are synchronous: a durable
 * implementation serves reads from memory and persists asynchronously before `advance()`.
 *
 * The log holds entries in [firstIndex(), lastIndex()]; entries below firstIndex were compacted
 * into the snapshot, whose index is firstIndex() - 1 (its term is still readable via `term`).
 *
 * Errors (coded TwErrors from this package): `TW_RAFT_LOG_COMPACTED` when a requested index is
 * below firstIndex - 1 (or below firstIndex for `entries`), `TW_RAFT_LOG_UNAVAILABLE` when it is
 * above lastIndex, `TW_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE` when a snapshot is being built.
 */
export interface Storage {
  /** The saved HardState and the membership (as of the last applied conf change or snapshot). */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at least one if any exist, then as many more as fit in `maxBytes`
   * (by {@link entrySizeBytes}). Infinity for no limit.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of the entry at `i`, for i in [firstIndex() - 1, lastIndex()]. */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry in the log (snapshot index if the log is empty). */
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

// ----------------------------------------------------------------------------------------------
// Configuration and components
// ----------------------------------------------------------------------------------------------

/** Uniform random integers; injected so a seed replays everything. Never Math.random. */
export interface RandomSource {
  /** A uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
}

export interface RaftLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

/**
 * TESTING ONLY. Each flag makes the library deliberately wrong in one known way, so that the
 * simulator's checkers can be shown to catch it. Never set in production; all default off.
 */
export interface PlantedBugs {
  /**
   * A candidate counts vote grants from older terms as if they were for its current term: a
   * grant that arrives late from a previous election counts toward this one, and a candidate that
   * campaigns again keeps the grants of its previous term (stale rejections are still ignored).
   * Breaks election safety.
   */
  readonly countVotesFromOldTerms?: boolean;
  /**
   * A leader advances its commit index by counting replicas of an entry from a previous term
   * (the Figure 8 mistake of the Raft paper, section 5.4.2). Breaks leader completeness /
   * state machine safety.
   */
  readonly commitPreviousTermByCounting?: boolean;
}

export type ReadOnlyOption = 'safe' | 'leaseBased';

export interface RaftConfig {
  /** This node's id (positive, never reused). */
  readonly id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns; randomised in [e, 2e). Must exceed heartbeatTick. */
  readonly electionTick: number;
  /** Ticks between leader heartbeats. */
  readonly heartbeatTick: number;
  /** The last applied index when restarting (0 for a new node). Committed entries above it are returned. */
  readonly applied?: number;
  /** Max bytes of entries in one MsgApp (at least one entry is always sent). Default limits.ts. */
  readonly maxSizePerMsg?: number;
  /** Max bytes of committed entries in one Ready (at least one). Default limits.ts. */
  readonly maxCommittedSizePerReady?: number;
  /** Max bytes of uncommitted entries a leader accepts before dropping proposals. Default limits.ts. */
  readonly maxUncommittedEntriesSize?: number;
  /** Max MsgApp in flight per follower in replicate state. Default limits.ts. */
  readonly maxInflightMsgs?: number;
  /** Max bytes of entries in flight per follower. Default limits.ts. */
  readonly maxInflightBytes?: number;
  /** Leader steps down without a quorum of contact in an election timeout; followers ignore votes while in lease. */
  readonly checkQuorum?: boolean;
  /** Two-phase elections (thesis 9.6): a partitioned node cannot disrupt the cluster on rejoin. */
  readonly preVote?: boolean;
  /** 'safe' (default): ReadIndex confirms leadership with a quorum round. 'leaseBased' needs checkQuorum and bounded clock drift. */
  readonly readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. */
  readonly disableProposalForwarding?: boolean;
  /** A leader removed from the membership steps down when it applies the removal. Default true. */
  readonly stepDownOnRemoval?: boolean;
  /** TESTING ONLY: deliberately wrong behaviours for the simulator's planted-bug tests. */
  readonly plantedBugs?: PlantedBugs;
}

/** What the node takes from its environment (house style: dependencies come in as components). */
export interface RaftComponents {
  readonly storage: Storage;
  /** Drives randomised election timeouts; seed it for replayable runs. */
  readonly random: RandomSource;
  readonly logger?: RaftLogger;
}

// ----------------------------------------------------------------------------------------------
// Status
// ----------------------------------------------------------------------------------------------

export enum ProgressState {
  Probe = 'StateProbe',
  Replicate = 'StateReplicate',
  Snapshot = 'StateSnapshot',
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflightCount: number;
  readonly inflightBytes: number;
  readonly pendingSnapshot: number;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  /** Leader only: per-peer replication progress. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
  readonly leadTransferee: NodeId;
  readonly confState: ConfState;
}

export enum SnapshotStatus {
  Finish = 'SnapshotFinish',
  Failure = 'SnapshotFailure',
}

/**
 * The RawNode API (implemented by `RawNode` in raw-node.ts; construct with
 * `new RawNode(config, components)` or `createRawNode(config, components)`).
 * Single-threaded: call from one event loop turn at a time.
 */
export interface RawNodeApi {
  /** Advances logical time by one tick (election / heartbeat timers). */
  tick(): void;
  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void;
  /** Proposes application data. Throws TW_RAFT_PROPOSAL_DROPPED (retryable) when no leader or flow-controlled. */
  propose(data: Uint8Array): void;
  /** Proposes a membership change; same errors as `propose`. */
  proposeConfChange(cc: ConfChange): void;
  /** Feeds a message received from a peer (or a local one such as MsgHup). */
  step(m: Message): void;
  /** Applies a committed conf change (call while applying its entry); returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState;
  /** Requests a linearizable read; a ReadState with the same ctx appears in a later Ready. */
  readIndex(requestCtx: Uint8Array): void;
  /** Asks the leader to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, status: SnapshotStatus): void;
  hasReady(): boolean;
  /** The pending work; call `advance()` after handling it (see {@link Ready}). */
  ready(): Ready;
  advance(): void;
  status(): Status;
}

/** Bytes an entry counts for in size limits (data plus a fixed framing overhead). */
export function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Framing overhead counted per entry in size limits (index, term, type). */
export const ENTRY_OVERHEAD_BYTES = 24;

/** Builds a message, filling unused fields with zero / empty values. */
export function newMessage(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/** True for messages that never cross the network (generated and consumed on one node). */
export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus ||
    t === MessageType.CheckQuorum
  );
}

/** True for responses (they never start a term change by themselves beyond step-down). */
export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable ||
    t === MessageType.ReadIndexResp ||
    t === MessageType.PreVoteResp
  );
}
