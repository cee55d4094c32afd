/**
 * One simulated server: the real RawNode from @tw/raft, a replicated state machine, a raft-facing
 * MemoryStorage (the in-memory mirror) and a {@link SimDisk}. It follows the Ready contract of
 * @tw/raft exactly: persist (wait for the disk), then send, then apply, then advance. Everything
 * volatile is lost in a crash; a restart rebuilds the node from what its disk made durable.
 *
 * The state machine may be asynchronous: every input method returns a promise that settles once
 * the node is done with the input (persist scheduled, messages sent, entries applied). The
 * simulation awaits it before the next event, so nothing interleaves and runs replay exactly.
 */
import {
  EntryType, MemoryStorage, MessageType, RawNode, SnapshotStatus, StateType, decodeConfChange, isTwErrorRetryable,
  type ConfState, type Entry, type Message, type RaftConfig, type Ready,
} from './raft-api.js';
import type { LogView } from './checkers.js';
import { cloneStorage, SimDisk, type DiskWrite } from './durable-disk.js';
import type { Prng } from './prng.js';
import { requestKey, type SimService, type SimStateMachine } from './service.js';

export interface ClientRequest<Req> {
  readonly clientId: number;
  readonly seq: number;
  readonly attempt: number;
  readonly req: Req;
}

export type ClientReply<Res> =
  | { readonly clientId: number; readonly seq: number; readonly ok: true; readonly result: Res; readonly from: number }
  | { readonly clientId: number; readonly seq: number; readonly ok: false; readonly leaderHint: number; readonly from: number };

/** What a node needs from the simulation around it. */
export interface NodeHost<Res> {
  now(): number;
  rng: Prng;
  /** Sends a raft message; returns false when the network dropped it at once (partition, loss). */
  sendRaft(m: Message): boolean;
  reply(r: ClientReply<Res>): void;
  scheduleDiskFlush(node: number, incarnation: number, at: number): void;
  diskLatency(): number;
  onAppend(node: number, entries: readonly Entry[], prevTermOf: (i: number) => number | undefined): void;
  onApply(node: number, e: Entry): void;
  onSnapshotRestore(node: number, index: number): void;
  /** The state machine's digest after applying up to `index` (sampled, see NodeSettings.digestEvery). */
  onDigest(node: number, index: number, digest: string): void;
}

export interface NodeSettings {
  readonly raft: Omit<RaftConfig, 'id' | 'applied'>;
  /** Compact the log once this many applied entries sit above the snapshot. */
  readonly compactEvery: number;
  /** Entries kept below the snapshot point for slow followers. */
  readonly compactKeep: number;
  readonly readIndexReads: boolean;
  /** TESTING THE TESTS ONLY: send and apply before the disk write is durable (breaks the Ready contract). */
  readonly sendBeforePersist?: boolean;
  /** TESTING THE TESTS ONLY: serve reads from the local state at once (no ReadIndex): stale reads. */
  readonly localReads?: boolean;
  /** Report the state digest after every applied index divisible by this (0: never). */
  readonly digestEvery?: number;
}

export class SimNode<Req, Res> implements LogView {
  incarnation = 0;
  up = true;
  raw!: RawNode;
  private mirror!: MemoryStorage;
  private sm: SimStateMachine<Req, Res> | undefined;
  private applied = 0;
  private busy = false;
  /** Client requests this node took (proposed or read), by requestKey. */
  private waiting = new Map<string, number>();
  private reads = new Map<string, ClientRequest<Req>>();
  private readyReads: { index: number; req: ClientRequest<Req> }[] = [];
  readonly disk: SimDisk;

  constructor(
    readonly id: number,
    bootstrap: ConfState,
    private readonly settings: NodeSettings,
    private readonly service: SimService<Req, Res, unknown>,
    private readonly host: NodeHost<Res>,
  ) {
    this.disk = new SimDisk(bootstrap);
  }

  /** Boots the node for the first time (the simulation calls it once before the run). */
  async start(): Promise<void> {
    await this.boot();
  }

  private get machine(): SimStateMachine<Req, Res> {
    return this.sm!;
  }

  /**
   * (Re)builds the volatile state from the durable disk. A volatile state machine restores
   * raft's durable snapshot (raft then replays the log above it); a durable one keeps what it
   * holds when that is at least the snapshot, and restores the snapshot otherwise.
   */
  private async boot(): Promise<void> {
    this.mirror = cloneStorage(this.disk.durable);
    this.sm = await this.service.newStateMachine(this.sm);
    const snap = this.mirror.snapshot();
    const held = this.sm.durableIndex?.() ?? 0;
    if (held >= snap.metadata.index && held > 0) {
      this.applied = held;
    } else {
      if (snap.metadata.index > 0) await this.sm.restore(snap.data);
      this.applied = snap.metadata.index;
    }
    this.raw = new RawNode({ ...this.settings.raft, id: this.id, applied: this.applied }, { storage: this.mirror, random: this.host.rng.fork(this.id * 1000 + this.incarnation) });
    this.busy = false;
    this.waiting = new Map();
    this.reads = new Map();
    this.readyReads = [];
  }

  crash(): number {
    this.up = false;
    this.incarnation++;
    return this.disk.crash(this.host.rng);
  }

  async restart(): Promise<void> {
    this.up = true;
    await this.boot();
  }

  // ---- LogView ----
  term(): number {
    return this.raw.raft.term;
  }
  vote(): number {
    return this.raw.raft.vote;
  }
  voters(): readonly number[] {
    return this.raw.raft.confState().voters;
  }
  isLeader(): boolean {
    return this.up && this.raw.raft.state === StateType.Leader;
  }
  firstIndex(): number {
    return this.raw.raft.raftLog.firstIndex();
  }
  lastIndex(): number {
    return this.raw.raft.raftLog.lastIndex();
  }
  termAt(i: number): number | undefined {
    return this.raw.raft.raftLog.term(i);
  }
  /** Entry at `i` from the full log, or undefined when compacted. */
  entryAt(i: number): Entry | undefined {
    if (i < this.firstIndex() || i > this.lastIndex()) return undefined;
    return this.raw.raft.raftLog.slice(i, i + 1, Infinity)?.[0];
  }
  get commitIndex(): number {
    return this.raw.raft.raftLog.committed;
  }
  get appliedIndex(): number {
    return this.applied;
  }
  digest(): Promise<string> {
    return Promise.resolve(this.machine.digest());
  }

  // ---- inputs ----
  async tick(): Promise<void> {
    this.raw.tick();
    await this.pump();
  }

  async receive(m: Message): Promise<void> {
    this.raw.step(m);
    await this.pump();
  }

  /** Asks this node (a leader) to hand leadership to `target`. */
  async transferLeadership(target: number): Promise<void> {
    this.raw.transferLeader(target);
    await this.pump();
  }

  async diskFlush(): Promise<void> {
    for (const done of this.disk.flush(this.host.now())) await done();
    await this.pump();
  }

  async clientRequest(r: ClientRequest<Req>): Promise<void> {
    const key = requestKey(r.clientId, r.seq);
    if (this.settings.localReads === true && this.service.isRead(r.req)) {
      const result = await this.machine.read(r.req);
      if (result !== undefined) this.host.reply({ clientId: r.clientId, seq: r.seq, ok: true, result, from: this.id });
      return;
    }
    if (this.settings.readIndexReads && this.service.isRead(r.req)) {
      const ctx = `${key}:${r.attempt}`;
      if (this.raw.raft.lead === 0) {
        this.host.reply({ clientId: r.clientId, seq: r.seq, ok: false, leaderHint: 0, from: this.id });
        return;
      }
      this.reads.set(ctx, r);
      this.raw.readIndex(new TextEncoder().encode(ctx));
      await this.pump();
      return;
    }
    try {
      this.raw.propose(this.service.encode(r.clientId, r.seq, r.req));
    } catch (err) {
      if (!isTwErrorRetryable(err)) throw err;
      this.host.reply({ clientId: r.clientId, seq: r.seq, ok: false, leaderHint: this.raw.raft.lead, from: this.id });
      return;
    }
    this.waiting.set(key, r.clientId);
    await this.pump();
  }

  // ---- the Ready loop ----
  private async pump(): Promise<void> {
    while (this.up && !this.busy && this.raw.hasReady()) {
      const rd = this.raw.ready();
      const write: DiskWrite = {
        kind: 'persist',
        ...(rd.snapshot === undefined ? {} : { snapshot: rd.snapshot }),
        entries: rd.entries,
        ...(rd.hardState === undefined ? {} : { hardState: rd.hardState }),
      };
      if (rd.snapshot !== undefined) this.mirror.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) {
        this.mirror.append(rd.entries);
        const mirror = this.mirror;
        this.host.onAppend(this.id, rd.entries, (i) => {
          try {
            return mirror.term(i - 1);
          } catch {
            return undefined;
          }
        });
      }
      if (rd.hardState !== undefined) this.mirror.setHardState(rd.hardState);
      if (rd.snapshot === undefined && rd.entries.length === 0 && rd.hardState === undefined) {
        await this.finish(rd);
        continue;
      }
      if (this.settings.sendBeforePersist === true) {
        const at = this.disk.enqueue(write, this.host.now(), this.host.diskLatency());
        this.host.scheduleDiskFlush(this.id, this.incarnation, at);
        await this.finish(rd);
        continue;
      }
      this.busy = true;
      const inc = this.incarnation;
      const at = this.disk.enqueue(write, this.host.now(), this.host.diskLatency(), async () => {
        if (this.incarnation === inc && this.up) await this.finish(rd);
      });
      this.host.scheduleDiskFlush(this.id, inc, at);
      return;
    }
  }

  /** Steps 2-4 of the Ready contract, once step 1 is durable. */
  private async finish(rd: Ready): Promise<void> {
    const unreachable = new Set<number>();
    for (const m of rd.messages) {
      const delivered = this.host.sendRaft(m);
      if (m.type === MessageType.Snap) this.raw.reportSnapshot(m.to, delivered ? SnapshotStatus.Finish : SnapshotStatus.Failure);
      if (!delivered) unreachable.add(m.to);
    }
    for (const to of unreachable) this.raw.reportUnreachable(to);
    if (rd.snapshot !== undefined) {
      await this.machine.restore(rd.snapshot.data);
      this.applied = rd.snapshot.metadata.index;
      this.host.onSnapshotRestore(this.id, this.applied);
    }
    for (const e of rd.committedEntries) {
      if (e.index <= this.applied) continue;
      this.host.onApply(this.id, e);
      this.applied = e.index;
      if (e.type === EntryType.ConfChange) {
        this.raw.applyConfChange(decodeConfChange(e.data));
        continue;
      }
      if (e.data.byteLength === 0) continue;
      const out = await this.machine.apply(e.data, e.index);
      if (out !== undefined && this.waiting.has(out.requestKey)) {
        const [c, s] = out.requestKey.split(':').map(Number) as [number, number];
        this.waiting.delete(out.requestKey);
        this.host.reply({ clientId: c, seq: s, ok: true, result: out.result, from: this.id });
      }
      const every = this.settings.digestEvery ?? 0;
      if (every > 0 && e.index % every === 0) this.host.onDigest(this.id, e.index, await this.machine.digest());
    }
    const dec = new TextDecoder();
    for (const rs of rd.readStates) {
      const req = this.reads.get(dec.decode(rs.requestCtx));
      if (req === undefined) continue;
      this.reads.delete(dec.decode(rs.requestCtx));
      this.readyReads.push({ index: rs.index, req });
    }
    await this.serveReads();
    this.raw.advance();
    this.busy = false;
    await this.maybeCompact();
  }

  private async serveReads(): Promise<void> {
    if (this.readyReads.length === 0) return;
    const later: typeof this.readyReads = [];
    for (const r of this.readyReads) {
      if (r.index > this.applied) {
        later.push(r);
        continue;
      }
      const result = await this.machine.read(r.req.req);
      if (result !== undefined) this.host.reply({ clientId: r.req.clientId, seq: r.req.seq, ok: true, result, from: this.id });
    }
    this.readyReads = later;
  }

  private async maybeCompact(): Promise<void> {
    const snapIndex = this.mirror.snapshot().metadata.index;
    if (this.applied - snapIndex < this.settings.compactEvery) return;
    const index = this.applied;
    const confState = this.raw.raft.confState();
    const data = await this.machine.snapshot();
    const compactTo = Math.max(index - this.settings.compactKeep, this.mirror.firstIndex() - 1);
    const write: DiskWrite = { kind: 'snapshot', index, confState, data, compactTo };
    this.mirror.createSnapshot(index, confState, data);
    if (compactTo >= this.mirror.firstIndex()) this.mirror.compact(compactTo);
    const at = this.disk.enqueue(write, this.host.now(), this.host.diskLatency());
    this.host.scheduleDiskFlush(this.id, this.incarnation, at);
  }
}
