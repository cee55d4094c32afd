/**
 * The interaction environment behind testdata/*.txt (in the manner of etcd's rafttest
 * InteractionEnv, our own code): several RawNodes over MemoryStorage, a message queue that the
 * script delivers explicitly, link cuts for partitions, and a trivial state machine (the list of
 * applied payloads). Every command returns the trace it produced.
 */
import {
  ConfChangeType,
  EntryType,
  MemoryStorage,
  MessageType,
  RawNode,
  SnapshotStatus,
  StateType,
  confChange,
  decodeConfChange,
  describeEntry,
  describeHardState,
  describeMessage,
  describeReady,
  seededRandom,
  type ConfState,
  type Message,
  type NodeId,
  type PlantedBugs,
  type RaftConfig,
  type ReadState,
} from '../src/index.js';
import { intArg, kvInts, type Command } from './datadriven.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface EnvNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  config: RaftConfig;
  /** The state machine: applied normal payloads, in order. */
  applied: string[];
  /** Log index of each element of `applied`. */
  appliedAt: number[];
  appliedIndex: number;
  confState: ConfState;
  readStates: ReadState[];
}

function indent(s: string, by = '  '): string {
  return s
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

export class InteractionEnv {
  readonly nodes = new Map<NodeId, EnvNode>();
  /** Messages sent and not yet delivered, in send order. */
  messages: Message[] = [];
  private readonly cut = new Set<string>();
  /** Every message each node sent, for invariant checks in unit tests. */
  readonly sent: Message[] = [];

  handle(c: Command): string {
    switch (c.name) {
      case 'add-nodes':
        return this.addNodes(c);
      case 'campaign':
        this.node(intArg(c, 0)).raw.campaign();
        return '';
      case 'tick':
        return this.tick(intArg(c, 0), c.args[1] === undefined ? 1 : intArg(c, 1));
      case 'tick-election': {
        const n = this.node(intArg(c, 0));
        return this.tick(n.id, n.config.electionTick);
      }
      case 'tick-heartbeat': {
        const n = this.node(intArg(c, 0));
        return this.tick(n.id, n.config.heartbeatTick);
      }
      case 'propose':
        return this.guard(() => this.node(intArg(c, 0)).raw.propose(enc.encode(c.args[1] ?? '')));
      case 'propose-batch':
        return this.guard(() => this.node(intArg(c, 0)).raw.proposeBatch(c.args.slice(1).map((a) => enc.encode(a))));
      case 'propose-conf-change':
        return this.guard(() => this.node(intArg(c, 0)).raw.proposeConfChange(parseConfChange(c.args[1] ?? '')));
      case 'process-ready':
        return c.args.map((a) => this.processReady(this.node(Number(a)))).filter((s) => s !== '').join('\n');
      case 'deliver-msgs':
        return this.deliver(c.args.map(Number), c.kv.has('drop'));
      case 'stabilize':
        return this.stabilize(c.args.length > 0 ? c.args.map(Number) : [...this.nodes.keys()]);
      case 'partition': {
        // partition 1 2 / 3 4 5: cut every link between the two sides.
        const slash = c.args.indexOf('/');
        const a = (slash < 0 ? c.args : c.args.slice(0, slash)).map(Number);
        const b = slash < 0 ? [...this.nodes.keys()].filter((x) => !a.includes(x)) : c.args.slice(slash + 1).map(Number);
        for (const x of a) for (const y of b) this.cut.add(`${x}-${y}`).add(`${y}-${x}`);
        return '';
      }
      case 'heal':
        this.cut.clear();
        return '';
      case 'compact': {
        const n = this.node(intArg(c, 0));
        const idx = intArg(c, 1);
        n.storage.createSnapshot(idx, n.confState, enc.encode(JSON.stringify(n.applied.slice(0, this.appliedCountAt(n, idx)))));
        n.storage.compact(idx);
        return this.raftLog(n);
      }
      case 'transfer-leadership':
        this.node(kvInts(c, 'from')![0]!).raw.transferLeader(kvInts(c, 'to')![0]!);
        return '';
      case 'read-index':
        this.node(intArg(c, 0)).raw.readIndex(enc.encode(c.args[1] ?? ''));
        return '';
      case 'report-unreachable':
        this.node(intArg(c, 0)).raw.reportUnreachable(intArg(c, 1));
        return '';
      case 'raft-state':
        return [...this.nodes.values()].map((n) => this.describeState(n)).join('\n');
      case 'raft-log':
        return this.raftLog(this.node(intArg(c, 0)));
      case 'state-machine': {
        const n = this.node(intArg(c, 0));
        return `applied=${n.appliedIndex} data=[${n.applied.join(' ')}]`;
      }
      case 'status':
        return this.status(this.node(intArg(c, 0)));
      case 'restart':
        return this.restart(this.node(intArg(c, 0)));
      default:
        throw new Error(`line ${c.line}: unknown command ${c.name}`);
    }
  }

  node(id: number): EnvNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  private guard(fn: () => void): string {
    try {
      fn();
      return '';
    } catch (err) {
      return `error: ${(err as { code?: string }).code ?? String(err)}`;
    }
  }

  private addNodes(c: Command): string {
    const count = intArg(c, 0);
    const voters = kvInts(c, 'voters') ?? [];
    const learners = kvInts(c, 'learners') ?? [];
    const index = kvInts(c, 'index')?.[0] ?? 0;
    const flag = (k: string): boolean => c.kv.get(k)?.[0] === 'true';
    const bugs: PlantedBugs = {
      ...(flag('bug-old-votes') ? { countVotesFromOldTerms: true } : {}),
      ...(flag('bug-commit-prev-term') ? { commitPreviousTermByCounting: true } : {}),
    };
    const out: string[] = [];
    for (let k = 0; k < count; k++) {
      const id = this.nodes.size + 1;
      const cs: ConfState = { voters, learners };
      const storage = new MemoryStorage(cs);
      if (index > 0) {
        // Bootstrap from a snapshot at `index` (as if the node had been restored from one).
        storage.applySnapshot({ metadata: { index, term: 1, confState: cs }, data: enc.encode('[]') });
      }
      const config: RaftConfig = {
        id,
        electionTick: Number(c.kv.get('election-tick')?.[0] ?? 10),
        heartbeatTick: Number(c.kv.get('heartbeat-tick')?.[0] ?? 1),
        checkQuorum: flag('check-quorum'),
        preVote: flag('pre-vote'),
        ...(c.kv.has('max-inflight') ? { maxInflightMsgs: Number(c.kv.get('max-inflight')![0]) } : {}),
        ...(c.kv.has('max-size-per-msg') ? { maxSizePerMsg: Number(c.kv.get('max-size-per-msg')![0]) } : {}),
        ...(c.kv.get('read-only')?.[0] === 'lease' ? { readOnlyOption: 'leaseBased' as const } : {}),
        applied: index,
        plantedBugs: bugs,
      };
      const raw = new RawNode(config, { storage, random: seededRandom(id) });
      this.nodes.set(id, { id, raw, storage, config, applied: [], appliedAt: [], appliedIndex: index, confState: cs, readStates: [] });
      out.push(`node ${id}: ${this.describeState(this.nodes.get(id)!)} first-index=${storage.firstIndex()}`);
    }
    return out.join('\n');
  }

  private tick(id: number, n: number): string {
    const node = this.node(id);
    for (let i = 0; i < n; i++) node.raw.tick();
    return '';
  }

  private appliedCountAt(n: EnvNode, index: number): number {
    if (index > n.appliedIndex) throw new Error(`cannot compact node ${n.id} to ${index}: applied only ${n.appliedIndex}`);
    return n.appliedAt.filter((i) => i <= index).length;
  }

  processReady(n: EnvNode): string {
    if (!n.raw.hasReady()) return '';
    const rd = n.raw.ready();
    // 1. persist
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    // 2. send
    for (const m of rd.messages) {
      this.sent.push(m);
      // A message sent across a cut link is lost.
      if (!this.cut.has(`${m.from}-${m.to}`)) this.messages.push(m);
    }
    // 3. apply
    if (rd.snapshot !== undefined) {
      n.applied = JSON.parse(dec.decode(rd.snapshot.data)) as string[];
      n.appliedAt = n.applied.map(() => 0);
      n.appliedIndex = rd.snapshot.metadata.index;
      n.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        n.confState = n.raw.applyConfChange(decodeConfChange(e.data));
        n.storage.setConfState(n.confState);
      } else if (e.data.byteLength > 0) {
        n.applied.push(dec.decode(e.data));
        n.appliedAt.push(e.index);
      }
      n.appliedIndex = e.index;
    }
    n.readStates.push(...rd.readStates);
    n.raw.advance();
    return `> ${n.id} handling Ready\n${indent(describeReady(rd))}`;
  }

  /** Delivers every queued message addressed to `ids` (all nodes when empty), or drops them. */
  deliver(ids: readonly number[], drop: boolean): string {
    const out: string[] = [];
    const targets = ids.length > 0 ? ids : [...this.nodes.keys()];
    for (const id of targets) {
      const mine = this.messages.filter((m) => m.to === id);
      if (mine.length === 0) continue;
      this.messages = this.messages.filter((m) => m.to !== id);
      const node = this.nodes.get(id);
      const lines: string[] = [];
      for (const m of mine) {
        if (drop || node === undefined || this.cut.has(`${m.from}-${m.to}`)) {
          lines.push(`dropped: ${describeMessage(m)}`);
          if (m.type === MessageType.Snap) this.nodes.get(m.from)?.raw.reportSnapshot(m.to, SnapshotStatus.Failure);
          continue;
        }
        lines.push(describeMessage(m));
        node.raw.step(m);
        // The transport reports a delivered snapshot back to its sender.
        if (m.type === MessageType.Snap) this.nodes.get(m.from)?.raw.reportSnapshot(m.to, SnapshotStatus.Finish);
      }
      out.push(`> ${id} receiving messages\n${indent(lines.join('\n'))}`);
    }
    return out.join('\n');
  }

  stabilize(ids: readonly number[]): string {
    const out: string[] = [];
    for (let round = 0; round < 1000; round++) {
      let progressed = false;
      for (const id of ids) {
        const s = this.processReady(this.node(id));
        if (s !== '') {
          out.push(s);
          progressed = true;
        }
      }
      for (const id of ids) {
        const s = this.deliver([id], false);
        if (s !== '') {
          out.push(s);
          progressed = true;
        }
      }
      if (!progressed) return out.join('\n');
    }
    throw new Error('stabilize did not converge in 1000 rounds');
  }

  describeState(n: EnvNode): string {
    const st = n.raw.status();
    const role = st.confState.learners.includes(n.id) ? 'Learner' : st.confState.voters.includes(n.id) ? 'Voter' : 'NonMember';
    return `${n.id}: ${st.softState.raftState} (${role}) Term:${st.hardState.term} Lead:${st.softState.lead}`;
  }

  raftLog(n: EnvNode): string {
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    if (last < first) return `log is empty: first index=${first}, last index=${last}`;
    return n.storage
      .entries(first, last + 1, Infinity)
      .map(describeEntry)
      .join('\n');
  }

  private status(n: EnvNode): string {
    const st = n.raw.status();
    const lines = [`${describeHardState(st.hardState)} applied=${st.applied} last=${st.lastIndex} voters=(${st.confState.voters.join(' ')}) learners=(${st.confState.learners.join(' ')})`];
    for (const [id, p] of [...st.progress].sort((a, b) => a[0] - b[0])) {
      lines.push(`${id}: ${p.state} match=${p.match} next=${p.next}${p.isLearner ? ' learner' : ''}${p.inflightCount > 0 ? ` inflight=${p.inflightCount}` : ''}${p.pendingSnapshot > 0 ? ` pendingSnap=${p.pendingSnapshot}` : ''}`);
    }
    return lines.join('\n');
  }

  /** Crash and restart: only what is in storage survives (volatile state and unsent messages are lost). */
  private restart(n: EnvNode): string {
    this.messages = this.messages.filter((m) => m.from !== n.id && m.to !== n.id);
    const snap = n.storage.snapshot();
    n.applied = JSON.parse(dec.decode(snap.data.byteLength > 0 ? snap.data : enc.encode('[]'))) as string[];
    n.appliedAt = n.applied.map(() => 0);
    n.appliedIndex = snap.metadata.index;
    n.confState = n.storage.initialState().confState;
    n.raw = new RawNode({ ...n.config, applied: snap.metadata.index }, { storage: n.storage, random: seededRandom(n.id + 1000) });
    n.readStates = [];
    return this.describeState(n);
  }

  leaders(): EnvNode[] {
    return [...this.nodes.values()].filter((n) => n.raw.raft.state === StateType.Leader);
  }
}

function parseConfChange(s: string): ReturnType<typeof confChange> {
  const kind = s[0];
  const id = Number(s.slice(1));
  if (kind === 'v') return confChange(ConfChangeType.AddNode, id);
  if (kind === 'l') return confChange(ConfChangeType.AddLearnerNode, id);
  if (kind === 'r') return confChange(ConfChangeType.RemoveNode, id);
  throw new Error(`bad conf change ${s} (v<id>, l<id> or r<id>)`);
}
