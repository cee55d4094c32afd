/**
 * A small randomised cluster driver for property tests of the library itself (the full
 * deterministic simulator lives in @tw/testkit). One seed drives: ticks, proposals, Ready
 * handling, message delivery in random order (reordering), drops, duplicates, partitions,
 * crash-restarts (only persisted state survives) and log compaction. After every step it checks
 * the paper's safety properties (Figure 3): election safety, log matching, state machine safety.
 */
import {
  EntryType,
  MemoryStorage,
  MessageType,
  RawNode,
  SnapshotStatus,
  StateType,
  decodeConfChange,
  seededRandom,
  confChange,
  ConfChangeType,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type PlantedBugs,
  type RaftConfig,
  type RandomSource,
} from '../src/index.js';

interface SimNode {
  id: number;
  raw: RawNode;
  storage: MemoryStorage;
  /** Index -> payload applied (this incarnation and earlier ones via the snapshot). */
  appliedIndex: number;
  confState: ConfState;
  alive: boolean;
}

export interface ClusterOptions {
  readonly nodes: number;
  readonly steps: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly plantedBugs?: PlantedBugs;
  /** Also propose membership changes: add learners (fresh ids), promote them, remove members. */
  readonly membership?: boolean;
  /** Disables drops, partitions, crashes (a sanity baseline). */
  readonly noFaults?: boolean;
  /** Max entries per MsgApp (bytes), small to exercise probing. */
  readonly maxSizePerMsg?: number;
}

export interface RunResult {
  readonly violation: string | undefined;
  readonly committed: number;
  readonly leadersElected: number;
  readonly steps: number;
  readonly summary: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function runRandomCluster(seed: number, opts: ClusterOptions): RunResult {
  const rnd: RandomSource = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rnd.int(xs.length)]!;
  const ids = Array.from({ length: opts.nodes }, (_, i) => i + 1);
  let nextId = opts.nodes + 1;
  let confChanges = 0;
  const cs: ConfState = { voters: [...ids], learners: [] };
  const nodes = new Map<number, SimNode>();
  let inflight: Message[] = [];
  const cut = new Set<string>();
  /** Global: log index -> the payload every node applied there (state machine safety). */
  const appliedAt = new Map<number, string>();
  /** term -> leader id (election safety). */
  const leaderOf = new Map<number, number>();
  let proposals = 0;
  let violation: string | undefined;

  const config = (id: number, applied: number): RaftConfig => ({
    id,
    electionTick: 6,
    heartbeatTick: 1,
    preVote: opts.preVote,
    checkQuorum: opts.checkQuorum,
    maxSizePerMsg: opts.maxSizePerMsg ?? 64,
    maxInflightMsgs: 4,
    applied,
    plantedBugs: opts.plantedBugs ?? {},
  });

  const addNode = (id: number, initial: ConfState): void => {
    const storage = new MemoryStorage(initial);
    nodes.set(id, { id, raw: new RawNode(config(id, 0), { storage, random: seededRandom(seed * 31 + id) }), storage, appliedIndex: 0, confState: initial, alive: true });
  };
  for (const id of ids) addNode(id, cs);

  /** One membership change proposed on the current leader, if any. */
  const changeMembership = (): void => {
    const leader = [...nodes.values()].find((x) => x.raw.raft.state === StateType.Leader);
    if (leader === undefined) return;
    const conf = leader.raw.raft.confState();
    let cc: ConfChange | undefined;
    if (conf.learners.length > 0 && rnd.int(2) === 0) {
      cc = confChange(ConfChangeType.AddNode, pick(conf.learners));
    } else if (rnd.int(3) === 0 && conf.voters.length > 3) {
      cc = confChange(ConfChangeType.RemoveNode, pick(conf.voters));
    } else if (conf.voters.length + conf.learners.length < opts.nodes + 2) {
      // A fresh id, never reused; the new node starts empty and learns the log (or a snapshot).
      const id = nextId++;
      addNode(id, { voters: cs.voters, learners: [id] });
      ids.push(id);
      cc = confChange(ConfChangeType.AddLearnerNode, id);
    } else if (conf.learners.length > 0) {
      cc = confChange(ConfChangeType.RemoveNode, pick(conf.learners));
    }
    if (cc === undefined) return;
    leader.raw.proposeConfChange(cc);
    confChanges++;
  };

  const fail = (msg: string): void => {
    violation ??= msg;
  };

  const handleReady = (n: SimNode): void => {
    if (!n.raw.hasReady()) return;
    const rd = n.raw.ready();
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      checkPersisted(n, m);
      inflight.push(m);
    }
    if (rd.snapshot !== undefined) n.appliedIndex = rd.snapshot.metadata.index;
    for (const e of rd.committedEntries) apply(n, e);
    n.raw.advance();
  };

  /** The persistence contract: what a message promises is already in storage when it is sent. */
  const checkPersisted = (n: SimNode, m: Message): void => {
    const hs = n.storage.initialState().hardState;
    if (m.type === MessageType.PreVote || m.type === MessageType.PreVoteResp) return;
    if (m.term > hs.term) fail(`persistence: node ${n.id} sent ${m.type} at term ${m.term} with term ${hs.term} persisted`);
    // A vote (granted, or for itself) must be on disk unless a later term already superseded it.
    if (m.type === MessageType.VoteResp && !m.reject && hs.term === m.term && hs.vote !== m.to) fail(`persistence: node ${n.id} granted a vote to ${m.to} in term ${m.term}, persisted vote ${hs.vote} term ${hs.term}`);
    if (m.type === MessageType.Vote && hs.term === m.term && hs.vote !== n.id) fail(`persistence: node ${n.id} asked for votes in term ${m.term} without a persisted self-vote`);
    if (m.type === MessageType.AppResp && !m.reject && m.index > n.storage.lastIndex()) fail(`persistence: node ${n.id} acknowledged index ${m.index} with ${n.storage.lastIndex()} persisted`);
  };

  const apply = (n: SimNode, e: Entry): void => {
    if (e.index !== n.appliedIndex + 1) fail(`node ${n.id} applied ${e.index} after ${n.appliedIndex}`);
    n.appliedIndex = e.index;
    const payload = `${e.term}:${e.type === EntryType.ConfChange ? `cc${decodeConfChange(e.data).nodeId}` : dec.decode(e.data)}`;
    const prior = appliedAt.get(e.index);
    if (prior === undefined) appliedAt.set(e.index, payload);
    else if (prior !== payload) fail(`state machine safety: index ${e.index} applied as ${prior} and as ${payload} (node ${n.id})`);
    if (e.type === EntryType.ConfChange) n.confState = n.raw.applyConfChange(decodeConfChange(e.data));
  };

  const logOf = (n: SimNode): Map<number, number> => {
    const out = new Map<number, number>();
    const log = n.raw.raft.raftLog;
    for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.set(i, log.term(i)!);
    return out;
  };

  const check = (): void => {
    for (const n of nodes.values()) {
      const r = n.raw.raft;
      if (r.state !== StateType.Leader) continue;
      const prior = leaderOf.get(r.term);
      if (prior === undefined) leaderOf.set(r.term, n.id);
      else if (prior !== n.id) fail(`election safety: nodes ${prior} and ${n.id} both leader of term ${r.term}`);
    }
    // Log matching: if two logs hold an entry with the same index and term, they agree on
    // every entry before it (checked on the overlapping ranges).
    const logs = [...nodes.values()].map((n) => ({ id: n.id, log: logOf(n) }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!;
        const lb = logs[b]!;
        let agreeAbove = false;
        const maxI = Math.max(...la.log.keys(), ...lb.log.keys(), 0);
        for (let i = maxI; i >= 1; i--) {
          const ta = la.log.get(i);
          const tb = lb.log.get(i);
          if (ta === undefined || tb === undefined) continue;
          if (ta === tb) agreeAbove = true;
          else if (agreeAbove) fail(`log matching: nodes ${la.id} and ${lb.id} agree above index ${i} but differ at it (${ta} vs ${tb})`);
        }
      }
    }
  };

  const steps = opts.steps;
  let step = 0;
  for (; step < steps && violation === undefined; step++) {
    const alive = [...nodes.values()].filter((n) => n.alive);
    const n = pick(alive);
    const action = rnd.int(1000);
    try {
      if (action < 150) {
        n.raw.tick();
      } else if (action < 200) {
        n.raw.propose(enc.encode(`p${proposals++}`));
      } else if (action < 480) {
        handleReady(n);
      } else if (action < 950) {
        if (inflight.length > 0) {
          // Deliver a random message (reordering), sometimes keeping a copy (duplication).
          const k = rnd.int(inflight.length);
          const m = inflight[k]!;
          if (opts.noFaults === true || rnd.int(10) !== 0) inflight.splice(k, 1);
          const to = nodes.get(m.to);
          const dropped = (opts.noFaults !== true && rnd.int(10) === 0) || cut.has(`${m.from}-${m.to}`) || to === undefined || !to.alive;
          if (!dropped) {
            to.raw.step(m);
            if (m.type === MessageType.Snap) nodes.get(m.from)?.raw.reportSnapshot(m.to, SnapshotStatus.Finish);
          } else if (m.type === MessageType.Snap) {
            nodes.get(m.from)?.raw.reportSnapshot(m.to, SnapshotStatus.Failure);
          }
        }
      } else if (opts.noFaults === true) {
        handleReady(n);
      } else if (action < 970) {
        // Partition one node away, or heal.
        if (cut.size > 0) cut.clear();
        else for (const other of ids) if (other !== n.id) cut.add(`${n.id}-${other}`).add(`${other}-${n.id}`);
      } else if (action < 980) {
        // Crash and restart: only storage survives; messages in flight to it are lost.
        inflight = inflight.filter((m) => m.to !== n.id);
        const snap = n.storage.snapshot();
        n.appliedIndex = snap.metadata.index;
        n.raw = new RawNode(config(n.id, snap.metadata.index), { storage: n.storage, random: seededRandom(seed * 97 + step) });
      } else if (action < 995) {
        // Compact the applied prefix (snapshot at the applied index).
        const at = n.appliedIndex - 1;
        if (at > n.storage.firstIndex()) {
          n.storage.createSnapshot(at, n.confState, new Uint8Array(0));
          n.storage.compact(at);
        }
      } else if (opts.membership === true && rnd.int(2) === 0) {
        changeMembership();
      } else {
        n.raw.campaign();
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'TW_RAFT_PROPOSAL_DROPPED') fail(`step ${step}: ${(err as Error).stack ?? String(err)}`);
    }
    check();
  }
  const commits = [...nodes.values()].map((x) => `${x.id}:${x.raw.raft.state}:t${x.raw.raft.term}:c${x.raw.raft.raftLog.committed}:l${x.raw.raft.raftLog.lastIndex()}`).join(' ');
  return { violation: violation === undefined ? undefined : `seed ${seed}: ${violation}`, committed: appliedAt.size, leadersElected: leaderOf.size, steps: step, summary: `${commits} inflight=${inflight.length} proposals=${proposals} confChanges=${confChanges}` };
}
