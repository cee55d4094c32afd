/**
 * The deterministic Raft simulator (in the spirit of FoundationDB's simulation and TigerBeetle's
 * VOPR). One seed drives everything: message loss, delay, reordering and duplication, partitions
 * (symmetric and one-way), crashes that lose the writes not yet durable, restarts, uneven and
 * changing tick rates, and the clients' workload. The real @tw/raft RawNode runs on every node.
 *
 * A run has three phases:
 * 1. faults: clients issue requests while faults are injected; the safety checkers
 *    (checkers.ts) run after every event;
 * 2. liveness: everything heals (links restored, loss off, crashed nodes restarted) and every
 *    client must complete a few new requests within a bound;
 * 3. quiesce: clients stop; all nodes must converge on the same applied index and state, and the
 *    clients' history must be linearizable (Porcupine-style checker, per-key partitions).
 *
 * Time is an integer count of abstract units (a node ticks about every 100). Nothing here reads
 * a clock or Math.random: `runSimulation(options)` with the same options replays exactly. The
 * state machine may be asynchronous (the block map): each event is handled to the end, every
 * promise awaited, before the next one is taken from the queue.
 *
 * A service with `setup` requests (e.g. the block map's init-cluster and namespace) gets an
 * administrator client that runs them first, on a healthy cluster (a bootstrap), within
 * `livenessBound`; the workload clients and the fault phase start once it is done.
 */
import { describeMessage, type Entry, type Message, type RaftConfig } from '@tw/raft';
import { testkitErrors } from '../errors.js';
import { checkLinearizable, describeFailure, type CheckResult } from '../linearizability/checker.js';
import { HistoryRecorder } from '../linearizability/history.js';
import type { Operation } from '../linearizability/model.js';
import { SafetyChecker, SafetyViolation } from './checkers.js';
import { EventQueue } from './event-queue.js';
import { SimNode, type ClientReply, type ClientRequest, type NodeHost } from './node.js';
import { Prng } from './prng.js';
import type { SimService } from './service.js';

export interface FaultProfile {
  /** Upper bound of the message loss rate drawn at each rate change. */
  readonly dropRateMax: number;
  readonly dupRateMax: number;
  /** Share of messages held back for a long delay (reordering). */
  readonly longDelayRate: number;
  readonly delayMin: number;
  readonly delayMax: number;
  readonly longDelayMax: number;
  /** Time between two fault actions. */
  readonly faultIntervalMin: number;
  readonly faultIntervalMax: number;
  /** Time a crashed node stays down. */
  readonly downMin: number;
  readonly downMax: number;
  /** Chance that a crash may take down a majority (otherwise at most a minority is down). */
  readonly majorityCrashChance: number;
  readonly diskLatencyMin: number;
  readonly diskLatencyMax: number;
  readonly tickIntervalMin: number;
  readonly tickIntervalMax: number;
}

export const DEFAULT_FAULTS: FaultProfile = {
  dropRateMax: 0.2,
  dupRateMax: 0.1,
  longDelayRate: 0.03,
  delayMin: 1,
  delayMax: 40,
  longDelayMax: 2500,
  faultIntervalMin: 100,
  faultIntervalMax: 1200,
  downMin: 100,
  downMax: 4000,
  majorityCrashChance: 0.15,
  diskLatencyMin: 1,
  diskLatencyMax: 60,
  tickIntervalMin: 70,
  tickIntervalMax: 150,
};

export interface SimOptions<Req, Res, S> {
  readonly seed: number;
  readonly nodeCount: number;
  readonly clientCount: number;
  readonly service: SimService<Req, Res, S>;
  /** Length of the fault phase, in time units. */
  readonly faultPhaseTime: number;
  /** After healing, every client must complete `livenessOps` new requests within this time. */
  readonly livenessBound: number;
  readonly livenessOps?: number;
  /** Time allowed for all nodes to converge once clients stop. */
  readonly quiesceTime?: number;
  /** Overrides of the raft configuration (electionTick, plantedBugs, ...). Unset fields are drawn from the seed. */
  readonly raft?: Partial<Omit<RaftConfig, 'id' | 'applied'>>;
  /** Serve gets with ReadIndex (default: drawn from the seed). */
  readonly readIndexReads?: boolean;
  readonly faults?: Partial<FaultProfile>;
  /** Client request timeout before a retry, and attempts before giving up (the op stays open). */
  readonly requestTimeout?: number;
  readonly requestAttempts?: number;
  readonly linearizabilityMaxSteps?: number;
  /** Safety net: events processed at most. */
  readonly eventsMax?: number;
  /** TESTING THE TESTS ONLY: nodes send before their writes are durable, so crashes lose acknowledged state. */
  readonly sendBeforePersist?: boolean;
  /** TESTING THE TESTS ONLY: nodes answer reads from their local state without ReadIndex (stale reads). */
  readonly localReads?: boolean;
  /** Also check the protocol-step invariants (vote quorum, commit rule); default true. */
  readonly protocolChecks?: boolean;
  /**
   * Compare state digests across nodes after every applied index divisible by this (0: only at
   * the end): nodes that applied the same index must hold the same state.
   */
  readonly digestEvery?: number;
}

export interface SimStats {
  events: number;
  time: number;
  elections: number;
  maxTerm: number;
  crashes: number;
  writesLost: number;
  partitions: number;
  transfers: number;
  messagesSent: number;
  messagesDropped: number;
  opsInvoked: number;
  opsCompleted: number;
  opsOpen: number;
  appliedEntries: number;
  snapshotRestores: number;
  digestsCompared: number;
  setupDoneAt: number;
  linearizability: CheckResult | 'skipped';
  config: string;
}

export interface SimResult<Req, Res> {
  readonly seed: number;
  readonly ok: boolean;
  /** Set when !ok: what broke, with the seed to replay it and the last events. */
  readonly failure?: string;
  readonly property?: string;
  readonly stats: SimStats;
  readonly history: readonly Operation<Req, Res>[];
}

type SimEvent<Req, Res> =
  | { kind: 'tick'; node: number; inc: number }
  | { kind: 'raft'; msg: Message }
  | { kind: 'disk'; node: number; inc: number }
  | { kind: 'request'; to: number; req: ClientRequest<Req> }
  | { kind: 'reply'; reply: ClientReply<Res> }
  | { kind: 'client'; client: number; token: number }
  | { kind: 'fault' }
  | { kind: 'restart'; node: number; inc: number }
  | { kind: 'crash'; node: number; inc: number }
  | { kind: 'heal' }
  | { kind: 'livenessDeadline' }
  | { kind: 'setupDeadline' }
  | { kind: 'final' };

interface ClientState<Req> {
  readonly id: number;
  /** The administrator running the service's setup requests (not recorded in the history). */
  readonly admin: boolean;
  seq: number;
  op: { opId: number; seq: number; req: Req; attempt: number; token: number } | undefined;
  leaderHint: number;
  doneAfterHeal: number;
}

class Simulation<Req, Res, S> implements NodeHost<Res> {
  readonly rng: Prng;
  private readonly netRng: Prng;
  private readonly faultRng: Prng;
  private readonly clientRng: Prng;
  private readonly queue = new EventQueue<SimEvent<Req, Res>>();
  private readonly nodes: SimNode<Req, Res>[] = [];
  private readonly tickInterval: number[] = [];
  private readonly clients: ClientState<Req>[] = [];
  private readonly checker: SafetyChecker;
  private readonly recorder = new HistoryRecorder<Req, Res>();
  private readonly blocked = new Set<number>();
  private readonly faults: FaultProfile;
  private readonly trace: { at: number; ev: SimEvent<Req, Res> }[] = [];
  private time = 0;
  private dropRate = 0;
  private dupRate = 0;
  /** A node whose outgoing messages crawl (overloaded host, bad NIC): stale answers arrive late. */
  private slowNode = 0;
  /** Chance that a new leader crashes soon after its election (a crash loop on taking leadership). */
  private readonly newLeaderCrashChance: number;
  /** Chance that a leader crashes right after its commit index advances (the Figure 8 window). */
  private readonly commitCrashChance: number;
  private readonly leaderCommitSeen = new Map<number, number>();
  private readonly leadersSeen = new Set<string>();
  /** Delay bound once the network heals (liveness needs round trips well under the election timeout). */
  private readonly healedDelayMax: number;
  private phase: 'setup' | 'faults' | 'liveness' | 'quiesce' | 'done' = 'faults';
  private readonly stats: SimStats;
  private readonly requestTimeout: number;
  private readonly requestAttempts: number;
  private readonly readIndexReads: boolean;
  private readonly raftConfig: Omit<RaftConfig, 'id' | 'applied'>;
  private readonly digests = new Map<number, { digest: string; node: number }>();
  private readonly setup: readonly Req[];
  private setupNext = 0;

  constructor(private readonly o: SimOptions<Req, Res, S>) {
    if (!Number.isSafeInteger(o.nodeCount) || o.nodeCount < 1 || o.nodeCount > 63) throw testkitErrors.create('TW_TESTKIT_BAD_OPTION', `nodeCount must be 1..63, got ${o.nodeCount}`);
    if (!Number.isSafeInteger(o.clientCount) || o.clientCount < 1) throw testkitErrors.create('TW_TESTKIT_BAD_OPTION', `clientCount must be a positive integer, got ${o.clientCount}`);
    this.checker = new SafetyChecker({ protocolChecks: o.protocolChecks ?? true });
    const root = new Prng(o.seed);
    this.rng = root.fork(1);
    this.netRng = root.fork(2);
    this.faultRng = root.fork(3);
    this.clientRng = root.fork(4);
    const cfgRng = root.fork(5);
    // Network profile per seed: sometimes slow enough (delays near the election timeout) for
    // split votes and stale answers, the conditions that expose election and commit bugs.
    const slow = cfgRng.pick([20, 40, 40, 150, 400]);
    this.faults = { ...DEFAULT_FAULTS, delayMax: slow, longDelayRate: cfgRng.pick([0.01, 0.03, 0.08]), ...o.faults };
    this.healedDelayMax = Math.min(this.faults.delayMax, DEFAULT_FAULTS.delayMax);
    this.newLeaderCrashChance = cfgRng.pick([0, 0.1, 0.3]);
    this.commitCrashChance = cfgRng.pick([0, 0.02, 0.1]);
    this.requestTimeout = o.requestTimeout ?? 1500;
    this.requestAttempts = o.requestAttempts ?? 6;
    // Configuration variety per seed: every combination gets exercised across the seed list.
    this.raftConfig = {
      electionTick: cfgRng.pick([6, 10, 10]),
      heartbeatTick: cfgRng.pick([1, 2]),
      preVote: cfgRng.chance(0.5),
      checkQuorum: cfgRng.chance(0.5),
      maxSizePerMsg: cfgRng.pick([1, 256, 4096, 1 << 20]),
      maxInflightMsgs: cfgRng.pick([1, 4, 256]),
      ...o.raft,
    };
    this.readIndexReads = o.readIndexReads ?? cfgRng.chance(0.5);
    this.stats = {
      events: 0, time: 0, elections: 0, maxTerm: 0, crashes: 0, writesLost: 0, partitions: 0, transfers: 0, messagesSent: 0,
      messagesDropped: 0, opsInvoked: 0, opsCompleted: 0, opsOpen: 0, appliedEntries: 0, snapshotRestores: 0,
      digestsCompared: 0, setupDoneAt: 0,
      linearizability: 'skipped',
      config: `service=${o.service.name} nodes=${o.nodeCount} newLeaderCrash=${this.newLeaderCrashChance} commitCrash=${this.commitCrashChance} delayMax=${this.faults.delayMax} longDelayRate=${this.faults.longDelayRate} electionTick=${this.raftConfig.electionTick} heartbeatTick=${this.raftConfig.heartbeatTick} preVote=${this.raftConfig.preVote} checkQuorum=${this.raftConfig.checkQuorum} maxSizePerMsg=${this.raftConfig.maxSizePerMsg} maxInflightMsgs=${this.raftConfig.maxInflightMsgs} readIndex=${this.readIndexReads}`,
    };
    const voters = Array.from({ length: o.nodeCount }, (_, i) => i + 1);
    for (const id of voters) {
      this.nodes.push(new SimNode<Req, Res>(id, { voters, learners: [] }, { raft: this.raftConfig, compactEvery: 24 + this.rng.int(40), compactKeep: this.rng.int(8), readIndexReads: this.readIndexReads, sendBeforePersist: o.sendBeforePersist ?? false, localReads: o.localReads ?? false, digestEvery: o.digestEvery ?? 0 }, o.service as SimService<Req, Res, unknown>, this));
      this.tickInterval.push(this.faultRng.between(this.faults.tickIntervalMin, this.faults.tickIntervalMax));
    }
    for (let c = 0; c < o.clientCount; c++) this.clients.push({ id: c + 1, admin: false, seq: 0, op: undefined, leaderHint: 0, doneAfterHeal: 0 });
    this.setup = o.service.setup ?? [];
    if (this.setup.length > 0) this.clients.push({ id: o.clientCount + 1, admin: true, seq: 0, op: undefined, leaderHint: 0, doneAfterHeal: 0 });
  }

  private get setupDone(): boolean {
    return this.setupNext >= this.setup.length;
  }

  // ---- NodeHost ----
  now(): number {
    return this.time;
  }
  diskLatency(): number {
    const f = this.faults;
    return this.netRng.chance(0.05) ? this.netRng.between(f.diskLatencyMax, f.diskLatencyMax * 5) : this.netRng.between(f.diskLatencyMin, f.diskLatencyMax);
  }
  scheduleDiskFlush(node: number, inc: number, at: number): void {
    this.queue.push(at, { kind: 'disk', node, inc });
  }
  private delay(from = 0): number {
    const f = this.faults;
    if (this.phase !== 'faults') return this.netRng.between(f.delayMin, this.healedDelayMax);
    if (from === this.slowNode) return this.netRng.between(f.delayMin, f.longDelayMax);
    return this.netRng.chance(f.longDelayRate) ? this.netRng.between(f.delayMax, f.longDelayMax) : this.netRng.between(f.delayMin, f.delayMax);
  }
  private isBlocked(from: number, to: number): boolean {
    return this.blocked.has(from * 64 + to);
  }
  sendRaft(m: Message): boolean {
    this.stats.messagesSent++;
    if (this.isBlocked(m.from, m.to)) {
      this.stats.messagesDropped++;
      return false;
    }
    if (this.netRng.chance(this.dropRate)) {
      this.stats.messagesDropped++;
      return true;
    }
    this.queue.push(this.time + this.delay(m.from), { kind: 'raft', msg: m });
    if (this.netRng.chance(this.dupRate)) this.queue.push(this.time + this.delay(m.from), { kind: 'raft', msg: m });
    return true;
  }
  reply(r: ClientReply<Res>): void {
    if (this.netRng.chance(this.dropRate)) return;
    this.queue.push(this.time + this.delay(), { kind: 'reply', reply: r });
  }
  onAppend(node: number, entries: readonly Entry[], prevTermOf: (i: number) => number | undefined): void {
    this.checker.observeAppend(node, entries, prevTermOf);
  }
  onApply(node: number, e: Entry): void {
    this.checker.observeApply(node, e);
    this.stats.appliedEntries++;
  }
  onSnapshotRestore(): void {
    this.stats.snapshotRestores++;
  }
  onDigest(node: number, index: number, digest: string): void {
    const prior = this.digests.get(index);
    if (prior === undefined) {
      this.digests.set(index, { digest, node });
      return;
    }
    this.stats.digestsCompared++;
    if (prior.digest !== digest) {
      throw new SafetyViolation('state digest', `node ${node} holds state ${digest} after applying index ${index}, node ${prior.node} held ${prior.digest}`);
    }
  }

  // ---- the run ----
  async run(): Promise<SimResult<Req, Res>> {
    const o = this.o;
    for (let i = 0; i < this.nodes.length; i++) this.queue.push(this.faultRng.int(this.tickInterval[i]!), { kind: 'tick', node: i + 1, inc: 0 });
    for (const c of this.clients) if (c.admin || this.setupDone) this.queue.push(this.clientRng.between(100, 3000), { kind: 'client', client: c.id, token: -1 });
    if (this.setupDone) {
      this.startFaults();
    } else {
      this.phase = 'setup';
      this.queue.push(o.livenessBound, { kind: 'setupDeadline' });
    }
    const eventsMax = o.eventsMax ?? 3_000_000;
    try {
      for (const n of this.nodes) await n.start();
      while (this.phase !== 'done') {
        const next = this.queue.pop();
        if (next === undefined) throw new SafetyViolation('liveness', 'the event queue ran dry');
        if (++this.stats.events > eventsMax) throw new SafetyViolation('liveness', `more than ${eventsMax} events`);
        this.time = next.at;
        this.trace.push(next);
        if (this.trace.length > 80) this.trace.splice(0, 40);
        await this.handle(next.ev);
      }
      return this.result(undefined);
    } catch (err) {
      return this.result(err);
    }
  }

  private startFaults(): void {
    this.phase = 'faults';
    this.queue.push(this.time + this.faultRng.between(this.faults.faultIntervalMin, this.faults.faultIntervalMax), { kind: 'fault' });
    this.queue.push(this.time + this.o.faultPhaseTime, { kind: 'heal' });
    this.queue.push(this.time + this.o.faultPhaseTime + this.o.livenessBound, { kind: 'livenessDeadline' });
  }

  private node(id: number): SimNode<Req, Res> {
    return this.nodes[id - 1]!;
  }

  private observe(n: SimNode<Req, Res>): void {
    if (!n.up) return;
    this.checker.observeVote(n);
    this.checker.observeRole(n, this.nodes);
    if (this.phase === 'faults' && n.isLeader()) {
      const key = `${n.id}@${n.term()}`;
      if (!this.leadersSeen.has(key)) {
        this.leadersSeen.add(key);
        if (this.faultRng.chance(this.newLeaderCrashChance)) this.queue.push(this.time + this.faultRng.between(1, 400), { kind: 'crash', node: n.id, inc: n.incarnation });
      }
      const commit = n.commitIndex;
      if (commit > (this.leaderCommitSeen.get(n.id) ?? 0)) {
        this.leaderCommitSeen.set(n.id, commit);
        if (this.faultRng.chance(this.commitCrashChance)) this.queue.push(this.time + this.faultRng.between(0, 30), { kind: 'crash', node: n.id, inc: n.incarnation });
      }
    }
    if (n.isLeader()) this.checker.observeLeaderCommit(n, n.commitIndex, (i) => n.entryAt(i), this.nodes);
    const t = n.term();
    if (t > this.stats.maxTerm) this.stats.maxTerm = t;
  }

  private async handle(ev: SimEvent<Req, Res>): Promise<void> {
    switch (ev.kind) {
      case 'tick': {
        const n = this.node(ev.node);
        if (!n.up || n.incarnation !== ev.inc) return;
        await n.tick();
        this.observe(n);
        const base = this.tickInterval[ev.node - 1]!;
        this.queue.push(this.time + base + this.faultRng.int(Math.max(1, base >> 3)), ev);
        return;
      }
      case 'raft': {
        const n = this.node(ev.msg.to);
        if (!n.up || this.isBlocked(ev.msg.from, ev.msg.to)) return;
        await n.receive(ev.msg);
        this.observe(n);
        return;
      }
      case 'disk': {
        const n = this.node(ev.node);
        if (!n.up || n.incarnation !== ev.inc) return;
        await n.diskFlush();
        this.observe(n);
        return;
      }
      case 'request': {
        const n = this.node(ev.to);
        if (!n.up) return;
        await n.clientRequest(ev.req);
        this.observe(n);
        return;
      }
      case 'reply':
        this.onReply(ev.reply);
        return;
      case 'client':
        this.onClientTimer(ev.client, ev.token);
        return;
      case 'fault':
        if (this.phase !== 'faults') return;
        await this.injectFault();
        this.queue.push(this.time + this.faultRng.between(this.faults.faultIntervalMin, this.faults.faultIntervalMax), { kind: 'fault' });
        return;
      case 'restart': {
        const n = this.node(ev.node);
        if (n.up || n.incarnation !== ev.inc) return;
        await this.restart(n);
        return;
      }
      case 'crash': {
        const n = this.node(ev.node);
        const down = this.nodes.filter((x) => !x.up).length;
        if (this.phase === 'faults' && n.up && n.incarnation === ev.inc && down < (this.nodes.length - 1) >> 1) this.crash(n);
        return;
      }
      case 'heal':
        await this.heal();
        return;
      case 'livenessDeadline':
        if (this.phase === 'liveness') {
          const behind = this.clients.filter((c) => !c.admin && c.doneAfterHeal < (this.o.livenessOps ?? 3)).map((c) => `client ${c.id}: ${c.doneAfterHeal}`);
          throw new SafetyViolation('liveness', `${this.o.livenessBound} time units after healing, clients still short of ${this.o.livenessOps ?? 3} completed requests (${behind.join(', ')})${this.setupDone ? '' : `, setup at step ${this.setupNext} of ${this.setup.length}`}; ${this.roles()}`);
        }
        return;
      case 'setupDeadline':
        if (this.phase === 'setup') throw new SafetyViolation('liveness', `setup still at step ${this.setupNext} of ${this.setup.length} after ${this.o.livenessBound} time units on a healthy cluster; ${this.roles()}`);
        return;
      case 'final':
        await this.finalChecks();
        this.phase = 'done';
        return;
    }
  }

  private roles(): string {
    return this.nodes.map((n) => `n${n.id}:${n.up ? `${n.raw.raft.state.replace('State', '')}@${n.term()} commit=${n.commitIndex} applied=${n.appliedIndex} last=${n.lastIndex()}` : 'down'}`).join(' ');
  }

  // ---- faults ----
  private crash(n: SimNode<Req, Res>): void {
    this.stats.crashes++;
    this.stats.writesLost += n.crash();
    this.queue.push(this.time + this.faultRng.between(this.faults.downMin, this.faults.downMax), { kind: 'restart', node: n.id, inc: n.incarnation });
  }

  private async restart(n: SimNode<Req, Res>): Promise<void> {
    await n.restart();
    this.tickInterval[n.id - 1] = this.phase === 'faults' ? this.faultRng.between(this.faults.tickIntervalMin, this.faults.tickIntervalMax) : this.faultRng.between(95, 105);
    this.queue.push(this.time + this.faultRng.int(this.tickInterval[n.id - 1]!), { kind: 'tick', node: n.id, inc: n.incarnation });
    this.observe(n);
  }

  private async injectFault(): Promise<void> {
    const r = this.faultRng;
    const n = this.nodes.length;
    const roll = r.int(100);
    // Nemeses aimed at the leader (Jepsen's favourite) make leaders churn with divergent logs.
    const leaders = this.nodes.filter((x) => x.isLeader());
    const leader = leaders.length > 0 ? r.pick(leaders) : undefined;
    if (roll < 25) {
      const up = this.nodes.filter((x) => x.up);
      const down = n - up.length;
      const limit = r.chance(this.faults.majorityCrashChance) ? n : (n - 1) >> 1;
      const victim = leader !== undefined && r.chance(0.6) ? leader : up.length > 0 ? r.pick(up) : undefined;
      if (victim !== undefined && down < limit) this.crash(victim);
    } else if (roll < 35 && leader !== undefined) {
      this.stats.partitions++;
      this.blocked.clear();
      for (let j = 1; j <= n; j++) if (j !== leader.id) this.block(leader.id, j, true);
    } else if (roll < 50) {
      this.stats.partitions++;
      this.blocked.clear();
      const kind = r.int(3);
      if (kind === 0) {
        const isolated = r.between(1, n);
        for (let j = 1; j <= n; j++) if (j !== isolated) this.block(isolated, j, true);
      } else if (kind === 1) {
        const side = this.nodes.map(() => r.chance(0.5));
        for (let a = 1; a <= n; a++) for (let b = 1; b <= n; b++) if (side[a - 1] !== side[b - 1]) this.block(a, b, false);
      } else {
        for (let k = r.between(1, n); k > 0; k--) {
          const a = r.between(1, n);
          const b = r.between(1, n);
          if (a !== b) this.block(a, b, false);
        }
      }
    } else if (roll < 65) {
      this.blocked.clear();
    } else if (roll < 72) {
      this.slowNode = r.chance(0.3) ? 0 : r.between(1, n);
    } else if (roll < 82) {
      this.dropRate = r.chance(0.3) ? 0 : r.float() * this.faults.dropRateMax;
      this.dupRate = r.chance(0.5) ? 0 : r.float() * this.faults.dupRateMax;
    } else if (roll < 88) {
      // Planned leadership transfer (drain, rolling upgrade) racing with everything else.
      if (leader !== undefined) {
        const target = r.between(1, n);
        if (target !== leader.id) {
          await leader.transferLeadership(target);
          this.observe(leader);
          this.stats.transfers++;
        }
      }
    } else {
      const id = r.between(1, n);
      this.tickInterval[id - 1] = r.between(this.faults.tickIntervalMin, this.faults.tickIntervalMax * 2);
    }
  }

  private block(a: number, b: number, both: boolean): void {
    this.blocked.add(a * 64 + b);
    if (both) this.blocked.add(b * 64 + a);
  }

  private async heal(): Promise<void> {
    this.phase = 'liveness';
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.slowNode = 0;
    for (const n of this.nodes) {
      if (!n.up) {
        n.incarnation++;
        await this.restart(n);
      }
      // Healing includes the clocks: Raft's liveness needs tick rates within its timeout
      // randomisation (a node ticking twice as fast with a stale log can disrupt forever).
      this.tickInterval[n.id - 1] = this.faultRng.between(95, 105);
    }
    // Requests still open stay open in the history (maybe applied); clients start afresh.
    for (const c of this.clients) {
      // The administrator retries its open setup request under a new seq (setup requests are idempotent).
      c.op = undefined;
      c.leaderHint = 0;
      if (c.admin || this.setupDone) this.queue.push(this.time + this.clientRng.between(1, 50), { kind: 'client', client: c.id, token: -1 });
    }
  }

  // ---- clients ----
  private onClientTimer(clientId: number, token: number): void {
    const c = this.clients[clientId - 1]!;
    if (this.phase === 'quiesce' || this.phase === 'done') return;
    if (token === -1) {
      if (c.op !== undefined) return;
      if (c.admin) {
        if (this.setupDone) return;
        c.seq++;
        c.op = { opId: -1, seq: c.seq, req: this.setup[this.setupNext]!, attempt: 0, token: 0 };
        this.sendAttempt(c);
        return;
      }
      if (!this.setupDone) return;
      const req = this.o.service.nextRequest(this.clientRng, c.id);
      c.seq++;
      c.op = { opId: this.recorder.invoke(c.id, req), seq: c.seq, req, attempt: 0, token: 0 };
      this.stats.opsInvoked++;
      this.sendAttempt(c);
      return;
    }
    if (c.op === undefined || c.op.token !== token) return;
    if (c.op.attempt >= this.requestAttempts && !c.admin) {
      // Give up: the request stays open in the history (it may still be applied).
      c.op = undefined;
      this.queue.push(this.time + this.clientRng.between(1, 100), { kind: 'client', client: c.id, token: -1 });
      return;
    }
    c.leaderHint = 0;
    this.sendAttempt(c);
  }

  private sendAttempt(c: ClientState<Req>): void {
    const op = c.op!;
    op.attempt++;
    op.token = this.clientRng.next();
    const to = c.leaderHint > 0 ? c.leaderHint : this.clientRng.between(1, this.nodes.length);
    if (!this.clientRng.chance(this.dropRate)) {
      this.queue.push(this.time + this.delay(), { kind: 'request', to, req: { clientId: c.id, seq: op.seq, attempt: op.attempt, req: op.req } });
    }
    this.queue.push(this.time + this.requestTimeout, { kind: 'client', client: c.id, token: op.token });
  }

  private onReply(r: ClientReply<Res>): void {
    const c = this.clients[r.clientId - 1]!;
    if (c.op === undefined || c.op.seq !== r.seq) return;
    if (!r.ok) {
      c.leaderHint = r.leaderHint;
      const token = (c.op.token = this.clientRng.next());
      // Retry soon; a refusal does not count as an attempt (nothing was proposed).
      c.op.attempt = Math.max(0, c.op.attempt - 1);
      this.queue.push(this.time + this.clientRng.between(20, 200), { kind: 'client', client: c.id, token });
      return;
    }
    if (c.admin) {
      c.op = undefined;
      this.setupNext++;
      if (this.setupDone) {
        this.stats.setupDoneAt = this.time;
        this.startFaults();
        for (const w of this.clients) if (!w.admin) this.queue.push(this.time + this.clientRng.between(1, 200), { kind: 'client', client: w.id, token: -1 });
      } else {
        this.queue.push(this.time + 1, { kind: 'client', client: c.id, token: -1 });
      }
      return;
    }
    this.recorder.complete(c.op.opId, r.result);
    this.stats.opsCompleted++;
    c.op = undefined;
    if (this.phase === 'liveness') {
      c.doneAfterHeal++;
      if (this.clients.every((x) => x.admin || x.doneAfterHeal >= (this.o.livenessOps ?? 3))) {
        this.phase = 'quiesce';
        this.queue.push(this.time + (this.o.quiesceTime ?? 6000), { kind: 'final' });
        return;
      }
    }
    this.queue.push(this.time + this.clientRng.between(0, 80), { kind: 'client', client: c.id, token: -1 });
  }

  // ---- the end ----
  private async finalChecks(): Promise<void> {
    const applied = new Set(this.nodes.map((n) => n.appliedIndex));
    const each: string[] = [];
    for (const n of this.nodes) each.push(await n.digest());
    const digests = new Set(each);
    if (applied.size !== 1 || digests.size !== 1) {
      throw new SafetyViolation('convergence', `after quiescing, nodes differ: ${this.roles()}; ${digests.size} distinct states:\n${this.nodes.map((n, i) => `    n${n.id}: ${each[i]!.slice(0, 2000)}`).join('\n')}`);
    }
    const history = this.recorder.history();
    const report = checkLinearizable(this.o.service.model, history, { maxSteps: this.o.linearizabilityMaxSteps ?? 2_000_000 });
    this.stats.linearizability = report.result;
    if (report.result === 'illegal') throw new SafetyViolation('linearizability', describeFailure(this.o.service.model, report, 40).replace(/^linearizability: /, ''));
  }

  private result(err: unknown): SimResult<Req, Res> {
    this.stats.time = this.time;
    this.stats.elections = this.checker.electionsObserved;
    this.stats.opsOpen = this.recorder.openCount;
    const history = this.recorder.history();
    if (err === undefined) return { seed: this.o.seed, ok: true, stats: this.stats, history };
    if (!(err instanceof SafetyViolation)) {
      const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
      return { seed: this.o.seed, ok: false, property: 'exception', failure: this.failureText(`exception: ${msg}`), stats: this.stats, history };
    }
    return { seed: this.o.seed, ok: false, property: err.property, failure: this.failureText(err.message), stats: this.stats, history };
  }

  private failureText(what: string): string {
    const lines = [
      `raft simulation failed: seed ${this.o.seed} (replay: runSimulation with seed ${this.o.seed}, or SIM_SEED=${this.o.seed})`,
      `  ${what}`,
      `  at time ${this.time}, event ${this.stats.events}, phase ${this.phase}; ${this.stats.config}`,
      `  nodes: ${this.roles()}`,
      '  last events:',
    ];
    for (const { at, ev } of this.trace.slice(-30)) lines.push(`    ${at} ${describeEvent(ev)}`);
    return lines.join('\n');
  }
}

function describeEvent<Req, Res>(ev: SimEvent<Req, Res>): string {
  switch (ev.kind) {
    case 'raft':
      return `deliver ${describeMessage(ev.msg)}`;
    case 'request':
      return `request c${ev.req.clientId}#${ev.req.seq} try ${ev.req.attempt} -> n${ev.to}`;
    case 'reply':
      return `reply c${ev.reply.clientId}#${ev.reply.seq} from n${ev.reply.from} ${ev.reply.ok ? 'ok' : 'refused'}`;
    case 'tick':
    case 'disk':
      return `${ev.kind} n${ev.node}`;
    case 'restart':
      return `restart n${ev.node}`;
    case 'client':
      return `client ${ev.client} timer`;
    default:
      return ev.kind;
  }
}

/** Runs one simulation; the same options give the same result, event for event. */
export function runSimulation<Req, Res, S>(options: SimOptions<Req, Res, S>): Promise<SimResult<Req, Res>> {
  return new Simulation(options).run();
}
