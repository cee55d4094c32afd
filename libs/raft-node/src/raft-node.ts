import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type RaftConfig,
  type RandomSource,
  RawNode,
  type Ready,
  SnapshotStatus,
  type Snapshot,
  StateType,
  type Storage,
  decodeConfChange,
} from '@tw/raft';
import { isTwError } from '@tw/errors';
import { raftNodeErrors } from './errors.js';
import { PEER_BATCH_MESSAGES_MAX, PEER_QUEUE_MESSAGES_MAX, PENDING_PROPOSALS_MAX, PENDING_READS_MAX } from './limits.js';
import { decodeMessage, encodeMessage } from './message-codec.js';

/**
 * The application under Raft. `apply` must be deterministic: every replica applies the same
 * entries in the same order and must end in the same state. Bad client input is a result, not a
 * throw: a throw from `apply` stops the node (its state can no longer be trusted).
 */
export interface ReplicatedStateMachine {
  /** Index of the last entry reflected in the state; persisted together with the state. */
  appliedIndex(): number;
  /** Applies committed entry `index` (application data, never the empty no-op of a new leader). */
  apply(index: number, data: Uint8Array): Promise<unknown>;
  /**
   * Optional: applies consecutive entries in order with the same effects and results as `apply`
   * on each (one result per entry); lets the state machine read and write once per batch.
   */
  applyBatch?(entries: readonly { readonly index: number; readonly data: Uint8Array }[]): Promise<unknown[]>;
  /** Makes every applied change durable (called before the Raft log is compacted behind it). */
  flush?(): Promise<void>;
  /** A consistent image of the state as of its applied index, in chunks. */
  openSnapshot(): Promise<{ index: number; chunks: AsyncIterable<Uint8Array> }>;
  /** Replaces the state with an image from `openSnapshot` of another replica. */
  restore(chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** The durable Raft log: raft's read side plus the writes a Ready asks for. */
export interface RaftLog extends Storage {
  /** `sync: false`: the update need not be durable when the promise resolves (a commit index that moved alone). */
  persist(update: { snapshot?: Snapshot; entries?: readonly Entry[]; hardState?: Ready['hardState']; confState?: ConfState; sync?: boolean }): Promise<void>;
  compact(index: number): Promise<void>;
  createSnapshot(index: number, confState: ConfState | undefined, data: Uint8Array): Promise<Snapshot>;
}

/** How this node reaches its peers (gRPC in production, in-process in tests). */
export interface RaftPeerTransport {
  /**
   * Sends encoded messages to a peer; rejects when the peer is unreachable. `lane` (see laneOf)
   * lets a transport keep the lanes apart (one stream each), so that a large append never holds
   * up a heartbeat; messages of one lane must arrive in the order sent, or not at all.
   */
  send(to: NodeId, messages: Buffer[], lane?: 'read' | 'log'): Promise<void>;
  /** Streams a snapshot: `header` is the encoded MsgSnap, then the state machine's image. */
  sendSnapshot(to: NodeId, header: Buffer, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly stateMachine: ReplicatedStateMachine;
  readonly transport: RaftPeerTransport;
  /** A folder for received snapshot images waiting to be installed. */
  readonly scratchDir: string;
  readonly random: RandomSource;
  /** Milliseconds per raft tick (default 100). */
  readonly tickMs?: number;
  /** Election timeout in ticks (default 10: 1-2 s with 100 ms ticks). */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks (default 1). */
  readonly heartbeatTicks?: number;
  /** Take a snapshot and compact the log after this many applied entries (default 10,000). */
  readonly snapshotEveryEntries?: number;
  /** Entries kept behind a snapshot for slow followers (default 5,000). */
  readonly keepEntriesAfterSnapshot?: number;
  readonly proposalTimeoutMs?: number;
  readonly readTimeoutMs?: number;
  readonly logger?: { debug(o: object, m: string): void; info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  /** Called on leader or role changes. */
  readonly onRoleChange?: (role: { leader: NodeId; isLeader: boolean; term: number }) => void;
  readonly raftConfig?: Partial<RaftConfig>;
}

interface PendingProposal {
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

interface PendingRead {
  ctx: string;
  index: number | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/**
 * Messages to a peer travel in two lanes, each with one RPC in flight: the read/liveness lane
 * (heartbeats, their responses, ReadIndex and its response: small, and a linearizable read waits
 * on them) and the replication lane (appends, votes, everything else). Without the split, a
 * heartbeat carrying a ReadIndex context waited behind the RPC of a large append, or behind the
 * previous heartbeat's RPC still waiting for its answer (traced on a loaded 2-core machine: 12-35 %
 * of heartbeat sends waited 0.5-4 ms). Raft tolerates reordering between them: a heartbeat's commit index is capped at the
 * follower's acknowledged match, and acks carry no log position.
 */
function laneOf(to: NodeId, type: MessageType): string {
  const fast = type === MessageType.Heartbeat || type === MessageType.HeartbeatResp || type === MessageType.ReadIndex || type === MessageType.ReadIndexResp;
  return fast ? `${to}:read` : `${to}:log`;
}

/** Proposal envelope: u8 magic | u64 proposer | u64 seq | payload. Lets the proposer find its result. */
const ENVELOPE_MAGIC = 0xa1;
const ENVELOPE_BYTES = 17;

/**
 * Runs a RawNode for real: ticks on a timer, persists each Ready durably before sending its
 * messages (the persistence contract of @tw/raft), applies committed entries to the state
 * machine, resolves proposals and linearizable reads, compacts the log behind snapshots, and
 * streams snapshots of the state machine to followers that fell behind.
 *
 * Every RawNode call happens from one loop (`#run`), never between a Ready and its advance():
 * inputs (ticks, peer messages, proposals) are queued and drained at the top of each iteration.
 */
export class RaftNode {
  readonly id: NodeId;
  readonly #raw: RawNode;
  readonly #log: RaftLog;
  readonly #sm: ReplicatedStateMachine;
  readonly #transport: RaftPeerTransport;
  readonly #opts: RaftNodeOptions;
  readonly #inbox: (() => void)[] = [];
  readonly #pending = new Map<number, PendingProposal>();
  readonly #reads: PendingRead[] = [];
  /** Outgoing messages by lane (see laneOf). */
  readonly #peerQueues = new Map<string, Buffer[]>();
  readonly #peerSending = new Set<string>();
  #seq = 0;
  #readSeq = 0;
  #running = false;
  #stopped = false;
  #fatal: unknown;
  #ticker: NodeJS.Timeout | undefined;
  #lead: NodeId = NONE;
  #state: StateType = StateType.Follower;
  #term = 0;
  #applied: number;
  #confState: ConfState;
  #snapshotting = false;
  #incoming: { index: number; file: string } | undefined;
  #idle: Promise<void> = Promise.resolve();
  #idleResolve: (() => void) | undefined;

  constructor(options: RaftNodeOptions) {
    this.id = options.id;
    this.#opts = options;
    this.#log = options.log;
    this.#sm = options.stateMachine;
    this.#transport = options.transport;
    this.#applied = options.stateMachine.appliedIndex();
    const snapIndex = options.log.snapshot().metadata.index;
    if (this.#applied < snapIndex) {
      // The log was compacted past what the state machine holds: only a snapshot from the
      // leader can bring it back, and raft would ask for entries that no longer exist.
      throw raftNodeErrors.create(
        'TW_RAFT_NODE_STATE_BEHIND_LOG',
        `state machine is at index ${this.#applied} but the raft log was compacted up to ${snapIndex}: its data was lost; remove this node's raft folder so it rejoins and receives a snapshot`,
        { details: { applied: this.#applied, snapshotIndex: snapIndex } },
      );
    }
    const init = options.log.initialState();
    this.#confState = init.confState;
    this.#term = init.hardState.term;
    this.#raw = new RawNode(
      {
        id: options.id,
        electionTick: options.electionTicks ?? 10,
        heartbeatTick: options.heartbeatTicks ?? 1,
        applied: this.#applied,
        checkQuorum: true,
        preVote: true,
        ...options.raftConfig,
      },
      { storage: options.log, random: options.random },
    );
  }

  /** Starts ticking. */
  start(): void {
    this.#ticker = setInterval(() => this.#enqueue(() => this.#raw.tick()), this.#opts.tickMs ?? 100);
    this.#kick();
  }

  get leader(): NodeId {
    return this.#lead;
  }
  get isLeader(): boolean {
    return this.#state === StateType.Leader;
  }
  get term(): number {
    return this.#term;
  }
  get appliedIndex(): number {
    return this.#applied;
  }
  get commitIndex(): number {
    return this.#raw.status().hardState.commit;
  }
  get membership(): ConfState {
    return this.#confState;
  }

  /** Campaigns at once (bootstrapping a fresh cluster faster than an election timeout). */
  campaign(): void {
    this.#enqueue(() => this.#raw.campaign());
  }

  /**
   * Proposes `data`; resolves with the state machine's result once the entry is applied here.
   * Only the leader takes proposals (others: TW_RAFT_NODE_NOT_LEADER with the leader's id).
   */
  propose(data: Uint8Array): Promise<unknown> {
    this.#checkRunning();
    if (!this.isLeader) return Promise.reject(this.#notLeader());
    if (this.#pending.size >= PENDING_PROPOSALS_MAX) return Promise.reject(raftNodeErrors.create('TW_RAFT_NODE_OVERLOADED', `${this.#pending.size} proposals pending`));
    const seq = ++this.#seq;
    const envelope = Buffer.allocUnsafe(ENVELOPE_BYTES + data.byteLength);
    envelope.writeUInt8(ENVELOPE_MAGIC, 0);
    envelope.writeBigUInt64BE(BigInt(this.id), 1);
    envelope.writeBigUInt64BE(BigInt(seq), 9);
    envelope.set(data, ENVELOPE_BYTES);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(raftNodeErrors.create('TW_RAFT_NODE_TIMEOUT', 'proposal not applied in time (it may still commit; retry with the same request id)'));
      }, this.#opts.proposalTimeoutMs ?? 5000);
      this.#pending.set(seq, { resolve, reject, timer });
      this.#enqueue(() => {
        try {
          this.#raw.propose(envelope);
        } catch (err) {
          clearTimeout(timer);
          this.#pending.delete(seq);
          reject(isTwError(err, 'TW_RAFT_PROPOSAL_DROPPED') ? this.#notLeader(err) : err);
        }
      });
    });
  }

  /**
   * A linearizable read barrier (ReadIndex): resolves once this node has applied everything
   * committed when the call was made, as confirmed by a quorum. Works on followers too (the
   * leader confirms the index).
   */
  readBarrier(): Promise<void> {
    this.#checkRunning();
    if (this.#reads.length >= PENDING_READS_MAX) return Promise.reject(raftNodeErrors.create('TW_RAFT_NODE_OVERLOADED', 'too many reads pending'));
    const ctxBytes = Buffer.allocUnsafe(16);
    ctxBytes.writeBigUInt64BE(BigInt(this.id), 0);
    ctxBytes.writeBigUInt64BE(BigInt(++this.#readSeq), 8);
    const ctx = ctxBytes.toString('hex');
    return new Promise<void>((resolve, reject) => {
      const read: PendingRead = {
        ctx,
        index: undefined,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#reads.indexOf(read);
          if (i !== -1) this.#reads.splice(i, 1);
          reject(raftNodeErrors.create('TW_RAFT_NODE_TIMEOUT', 'linearizable read not confirmed in time (no leader or no quorum)'));
        }, this.#opts.readTimeoutMs ?? 5000),
      };
      this.#reads.push(read);
      this.#enqueue(() => this.#raw.readIndex(ctxBytes));
    });
  }

  /** Hands leadership to `to` (a planned move, e.g. before restarting the leader). */
  transferLeadership(to: NodeId): void {
    this.#enqueue(() => this.#raw.transferLeader(to));
  }

  /** Messages from a peer (the RaftPeer service's Step). Undecodable ones are dropped. */
  receive(encoded: readonly Uint8Array[]): void {
    if (this.#stopped) return;
    for (const bytes of encoded) {
      let m: Message;
      try {
        m = decodeMessage(bytes);
      } catch (err) {
        this.#opts.logger?.warn({ err: (err as Error).message }, 'dropping undecodable raft message');
        continue;
      }
      if (m.to !== this.id || m.type === MessageType.Snap) continue;
      this.#enqueue(() => this.#raw.step(m));
    }
  }

  /**
   * A snapshot from the leader (the RaftPeer service's InstallSnapshot): the image is staged on
   * disk, then the MsgSnap is stepped; the image replaces the state machine only if Raft accepts
   * the snapshot (it appears in a Ready).
   */
  async receiveSnapshot(header: Uint8Array, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    this.#checkRunning();
    const m = decodeMessage(header);
    if (m.type !== MessageType.Snap || m.snapshot === undefined || m.to !== this.id) {
      throw raftNodeErrors.create('TW_RAFT_NODE_BAD_MESSAGE', 'snapshot stream without a MsgSnap header for this node');
    }
    await mkdir(this.#opts.scratchDir, { recursive: true });
    const file = join(this.#opts.scratchDir, `incoming-${m.snapshot.metadata.index}.snap`);
    try {
      await pipeline(Readable.from(chunks), createWriteStream(file));
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    if (this.#incoming !== undefined && this.#incoming.file !== file) await rm(this.#incoming.file, { force: true });
    this.#incoming = { index: m.snapshot.metadata.index, file };
    this.#enqueue(() => this.#raw.step(m));
  }

  /** Stops ticking, fails everything pending, waits for the loop to settle. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#ticker);
    const err = raftNodeErrors.create('TW_RAFT_NODE_STOPPED', 'raft node stopped');
    for (const [seq, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(seq);
    }
    for (const r of this.#reads.splice(0)) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    await this.#idle;
  }

  /** Set when the loop died on an unexpected error (storage failure, state machine bug). */
  get fatalError(): unknown {
    return this.#fatal;
  }

  #notLeader(cause?: unknown): Error {
    return raftNodeErrors.create('TW_RAFT_NODE_NOT_LEADER', `node ${this.id} is not the leader`, {
      ...(cause === undefined ? {} : { cause }),
      details: { leader: this.#lead },
    });
  }

  #checkRunning(): void {
    if (this.#stopped) throw raftNodeErrors.create('TW_RAFT_NODE_STOPPED', 'raft node stopped');
  }

  #enqueue(op: () => void): void {
    if (this.#stopped) return;
    this.#inbox.push(op);
    this.#kick();
  }

  #kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#idle = new Promise((r) => (this.#idleResolve = r));
    void this.#run().finally(() => {
      this.#running = false;
      this.#idleResolve?.();
      if (this.#inbox.length > 0 && !this.#stopped) this.#kick();
    });
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        while (this.#inbox.length > 0) {
          const op = this.#inbox.shift()!;
          try {
            op();
          } catch (err) {
            this.#opts.logger?.debug({ err: (err as Error).message }, 'raft input refused');
          }
        }
        if (this.#stopped || !this.#raw.hasReady()) return;
        await this.#handleReady(this.#raw.ready());
        this.#raw.advance();
        await this.#maybeCompact();
      }
    } catch (err) {
      this.#fatal = err;
      this.#opts.logger?.error({ err: (err as Error).stack ?? String(err) }, 'raft node stopped on an unexpected error');
      void this.stop();
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState) {
      const wasLeader = this.#state === StateType.Leader;
      const prevLead = this.#lead;
      this.#lead = rd.softState.lead;
      this.#state = rd.softState.raftState;
      if (rd.hardState) this.#term = rd.hardState.term;
      this.#opts.onRoleChange?.({ leader: this.#lead, isLeader: this.isLeader, term: this.#term });
      if (wasLeader && !this.isLeader) this.#failPendingOnStepDown();
      if (this.#lead !== 0 && this.#lead !== prevLead) this.#reissueReads();
    } else if (rd.hardState) {
      this.#term = rd.hardState.term;
    }
    // 1. Persist (durably) before anything that depends on it leaves this node.
    if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) {
      // etcd's MustSync: new entries, a snapshot, a new term or vote must be durable before any
      // message leaves; a commit index that moved alone need not be (raft re-learns it from the
      // leader, and treats what the state machine applied as committed after a restart). Saves
      // an fsync per commit round on every replica.
      const prev = this.#persistedHard;
      const hs = rd.hardState;
      const mustSync = rd.snapshot !== undefined || rd.entries.length > 0 || (hs !== undefined && (prev === undefined || hs.term !== prev.term || hs.vote !== prev.vote));
      await this.#log.persist({
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
        ...(rd.entries.length ? { entries: rd.entries } : {}),
        ...(hs ? { hardState: hs } : {}),
        ...(mustSync ? {} : { sync: false }),
      });
      if (hs !== undefined) this.#persistedHard = hs;
    }
    // 2. Send.
    for (const m of rd.messages) this.#send(m);
    // 3. Apply: an accepted snapshot first, then committed entries.
    if (rd.snapshot !== undefined) await this.#installSnapshot(rd.snapshot);
    await this.#applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) {
      const ctx = Buffer.from(rs.requestCtx).toString('hex');
      const read = this.#reads.find((r) => r.ctx === ctx);
      if (read) read.index = rs.index;
    }
    this.#serveReads();
  }

  /** The last hard state written (tells a commit-only change from a term or vote change). */
  #persistedHard: Ready['hardState'] | undefined;

  /** Applies committed entries in order; runs of application entries go to `applyBatch` when the state machine has it. */
  async #applyEntries(entries: readonly Entry[]): Promise<void> {
    if (this.#sm.applyBatch === undefined) {
      for (const e of entries) await this.#applyEntry(e);
      return;
    }
    let run: Entry[] = [];
    const flushRun = async (): Promise<void> => {
      if (run.length === 0) return;
      const batch = run;
      run = [];
      const items = batch.map((e) => ({ e, env: this.#unwrap(e) }));
      const results = await this.#sm.applyBatch!(items.map(({ e, env }) => ({ index: e.index, data: env.payload })));
      for (let i = 0; i < items.length; i++) {
        const { e, env } = items[i]!;
        this.#applied = e.index;
        this.#resolveProposal(env.proposer, env.seq, results[i]);
      }
    };
    for (const e of entries) {
      if (e.index <= this.#applied) continue;
      if (e.type === EntryType.ConfChange || e.data.byteLength === 0) {
        await flushRun();
        await this.#applyEntry(e);
      } else {
        run.push(e);
      }
    }
    await flushRun();
  }

  /** Splits a proposal envelope (see ENVELOPE_MAGIC) from the state machine's payload. */
  #unwrap(e: Entry): { proposer: number; seq: number; payload: Uint8Array } {
    const data = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    if (data.length >= ENVELOPE_BYTES && data[0] === ENVELOPE_MAGIC) {
      return { proposer: Number(data.readBigUInt64BE(1)), seq: Number(data.readBigUInt64BE(9)), payload: data.subarray(ENVELOPE_BYTES) };
    }
    return { proposer: 0, seq: 0, payload: data };
  }

  #resolveProposal(proposer: number, seq: number, result: unknown): void {
    if (proposer !== this.id) return;
    const p = this.#pending.get(seq);
    if (p) {
      clearTimeout(p.timer);
      this.#pending.delete(seq);
      p.resolve(result);
    }
  }

  async #applyEntry(e: Entry): Promise<void> {
    if (e.index <= this.#applied) return;
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      this.#confState = this.#raw.applyConfChange(cc);
      await this.#log.persist({ confState: this.#confState });
      this.#applied = e.index;
      return;
    }
    if (e.data.byteLength === 0) {
      this.#applied = e.index;
      return;
    }
    const { proposer, seq, payload } = this.#unwrap(e);
    const result = await this.#sm.apply(e.index, payload);
    this.#applied = e.index;
    this.#resolveProposal(proposer, seq, result);
  }

  #serveReads(): void {
    for (let i = 0; i < this.#reads.length; ) {
      const r = this.#reads[i]!;
      if (r.index !== undefined && r.index <= this.#applied) {
        clearTimeout(r.timer);
        this.#reads.splice(i, 1);
        r.resolve();
      } else i++;
    }
  }

  /**
   * Asks the new leader again for every read not yet given an index. Raft drops a ReadIndex
   * request at a follower that knows no leader, and one forwarded to a leader that then died is
   * lost: without this, such a read waited for its timeout (5 s by default; a gateway's lookups
   * stalled that long across a failover, measured), where the new leader confirms it as soon as
   * it has committed an entry of its term (etcd's server retries its ReadIndex for the same reason).
   */
  #reissueReads(): void {
    for (const r of this.#reads) {
      if (r.index !== undefined) continue;
      const ctx = Buffer.from(r.ctx, 'hex');
      this.#enqueue(() => this.#raw.readIndex(ctx));
    }
  }

  #failPendingOnStepDown(): void {
    // Proposals of a deposed leader may still commit under the new leader, or may be lost:
    // their callers learn it by timeout and retry with the same request id (idempotent).
    this.#opts.logger?.info({ pending: this.#pending.size }, 'stepped down with proposals pending');
  }

  #send(m: Message): void {
    if (m.type === MessageType.Snap) {
      void this.#sendSnapshot(m);
      return;
    }
    const lane = laneOf(m.to, m.type);
    let q = this.#peerQueues.get(lane);
    if (q === undefined) {
      q = [];
      this.#peerQueues.set(lane, q);
    }
    if (q.length >= PEER_QUEUE_MESSAGES_MAX) q.shift(); // raft tolerates loss; memory does not
    q.push(encodeMessage(m));
    void this.#flushPeer(m.to, lane);
  }

  /**
   * Sends one lane's queue to a peer, one RPC in flight per lane (messages queued meanwhile go
   * out together in the next RPC).
   */
  async #flushPeer(to: NodeId, lane: string): Promise<void> {
    if (this.#peerSending.has(lane)) return;
    this.#peerSending.add(lane);
    try {
      const q = this.#peerQueues.get(lane)!;
      while (q.length > 0 && !this.#stopped) {
        const batch = q.splice(0, PEER_BATCH_MESSAGES_MAX);
        try {
          await this.#transport.send(to, batch, lane.endsWith(':read') ? 'read' : 'log');
        } catch {
          this.#enqueue(() => this.#raw.reportUnreachable(to));
        }
      }
    } finally {
      this.#peerSending.delete(lane);
    }
  }

  async #sendSnapshot(m: Message): Promise<void> {
    let status = SnapshotStatus.Failure;
    try {
      const image = await this.#sm.openSnapshot();
      // The image is the state as of its own applied index, which may be past the log's
      // snapshot point: describe the snapshot by the image (as etcd does with its backend).
      const index = Math.max(image.index, m.snapshot!.metadata.index);
      const meta = { index, term: this.#log.term(index), confState: this.#confState };
      const header = encodeMessage({ ...m, snapshot: { metadata: meta, data: new Uint8Array(0) } });
      await this.#transport.sendSnapshot(m.to, header, image.chunks);
      status = SnapshotStatus.Finish;
    } catch (err) {
      this.#opts.logger?.warn({ to: m.to, err: (err as Error).message }, 'snapshot send failed');
    }
    this.#enqueue(() => this.#raw.reportSnapshot(m.to, status));
  }

  async #installSnapshot(snap: Snapshot): Promise<void> {
    const staged = this.#incoming;
    if (staged === undefined || staged.index !== snap.metadata.index) {
      throw raftNodeErrors.create('TW_RAFT_NODE_BAD_MESSAGE', `raft accepted snapshot ${snap.metadata.index} but no image for it was received`);
    }
    await this.#sm.restore(createReadStream(staged.file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>);
    await rm(staged.file, { force: true });
    this.#incoming = undefined;
    this.#applied = snap.metadata.index;
    this.#confState = snap.metadata.confState;
    this.#opts.logger?.info({ index: snap.metadata.index }, 'installed snapshot');
  }

  async #maybeCompact(): Promise<void> {
    const every = this.#opts.snapshotEveryEntries ?? 10_000;
    const keep = this.#opts.keepEntriesAfterSnapshot ?? 5_000;
    const snapIndex = this.#log.snapshot().metadata.index;
    // Snapshot at the state machine's own index, not at ours: entries that carry no command
    // (a new leader's empty entry, membership changes) move #applied but not the state
    // machine's index, and a snapshot past it would make a restarted node refuse to start.
    const index = Math.min(this.#applied, this.#sm.appliedIndex());
    if (this.#snapshotting || index - snapIndex < every) return;
    this.#snapshotting = true;
    try {
      await this.#sm.flush?.();
      await this.#log.createSnapshot(index, this.#confState, new Uint8Array(0));
      const compactTo = index - keep;
      if (compactTo > this.#log.firstIndex()) await this.#log.compact(compactTo);
    } finally {
      this.#snapshotting = false;
    }
  }
}
