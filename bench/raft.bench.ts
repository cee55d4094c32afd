/**
 * Raft: proposals committed per second on 3 in-process nodes (MemoryStorage, messages handed
 * over in-process), with batching, at 1, 64 and 512 concurrent proposers, with and without a
 * simulated 100 us one-way network delay.
 *
 * Each proposer keeps one proposal outstanding: when the leader applies it, the proposer proposes
 * again. Proposals made between two Readys go out in one MsgApp per follower (batching).
 * Baseline (same run, same loop): the proposers append to an in-memory array and are "committed"
 * at once, without consensus. Ratio = raft / baseline (how much of the bare loop rate raft keeps).
 *
 * Napkin math: per batch the leader does one Ready (persist + 2 MsgApp), each follower one Ready
 * (persist + 1 MsgAppResp), then the leader a Ready to apply: ~5 Ready cycles and ~4 message
 * steps per round, a few microseconds each, so at 1 proposer expect ~50-100k/s and, with batching,
 * far more at 64 and 512. A 100 us delay costs one round trip (200 us) per batch: at 1 proposer
 * that caps it near 5k/s; larger batches amortise it.
 */
import { MemoryStorage, RawNode, seededRandom, type Message } from '@tw/raft';
import { quick, scale, median, withBaseline, type Metric } from './lib/harness.js';

const PAYLOAD_BYTES = 128;
const NODE_IDS = [1, 2, 3] as const;

interface BenchNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  applied: number;
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Runs the 3-node loop for `durationMs` and returns committed (applied on the leader) proposals per second. */
export function runRaft(concurrency: number, delayUs: number, durationMs: number): number {
  const nodes = new Map<number, BenchNode>();
  for (const id of NODE_IDS) {
    const storage = new MemoryStorage({ voters: [...NODE_IDS], learners: [] });
    const raw = new RawNode({ id, electionTick: 10, heartbeatTick: 1 }, { storage, random: seededRandom(id) });
    nodes.set(id, { raw, storage, applied: 0 });
  }
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  const delayNs = BigInt(Math.round(delayUs * 1000));
  // Messages in flight: delivered in order once due (FIFO per run; the delay is the same for all).
  const queue: { dueNs: bigint; m: Message }[] = [];
  let head = 0;
  let committed = 0;
  let measuring = false;
  const leader = nodes.get(1)!;

  const handle = (n: BenchNode, isLeader: boolean): void => {
    const rd = n.raw.ready();
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    const due = delayNs === 0n ? 0n : nowNs() + delayNs;
    for (const m of rd.messages) queue.push({ dueNs: due, m });
    let proposeAgain = 0;
    for (const e of rd.committedEntries) {
      n.applied = e.index;
      if (isLeader && e.data.byteLength > 0) {
        if (measuring) committed++;
        proposeAgain++;
      }
    }
    n.raw.advance();
    // Each applied proposal frees its proposer, which proposes again at once.
    for (let i = 0; i < proposeAgain; i++) leader.raw.propose(payload);
    // Keep memory bounded: compact what every node applied.
    if (n.applied - n.storage.firstIndex() > 20_000) n.storage.compact(n.applied - 1_000);
  };

  const pump = (): boolean => {
    let worked = false;
    for (const [id, n] of nodes) {
      if (n.raw.hasReady()) {
        handle(n, id === 1);
        worked = true;
      }
    }
    const now = delayNs === 0n ? 0n : nowNs();
    while (head < queue.length && queue[head]!.dueNs <= now) {
      const { m } = queue[head++]!;
      nodes.get(m.to)!.raw.step(m);
      worked = true;
    }
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    return worked;
  };

  // Elect node 1 and let the cluster settle.
  leader.raw.campaign();
  for (let i = 0; i < 10_000 && (leader.raw.raft.state !== 'StateLeader' || pump()); i++) pump();
  for (let i = 0; i < 1000; i++) if (!pump()) break;

  for (let c = 0; c < concurrency; c++) leader.raw.propose(payload);
  // Warm-up, then measure.
  const warmEnd = nowNs() + BigInt(Math.round(durationMs * 0.2 * 1e6));
  while (nowNs() < warmEnd) pump();
  measuring = true;
  const t0 = nowNs();
  const end = t0 + BigInt(Math.round(durationMs * 1e6));
  let t = t0;
  while (t < end) {
    for (let i = 0; i < 64; i++) pump();
    t = nowNs();
  }
  return committed / (Number(t - t0) / 1e9);
}

/** The same loop without consensus: each proposal is appended to an array and committed at once. */
function runBaseline(concurrency: number, durationMs: number): number {
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  let log: Uint8Array[] = [];
  let outstanding: number[] = [];
  let committed = 0;
  for (let c = 0; c < concurrency; c++) outstanding.push(c);
  const t0 = nowNs();
  const end = t0 + BigInt(Math.round(durationMs * 1e6));
  let t = t0;
  while (t < end) {
    for (let i = 0; i < 64; i++) {
      // "Ready": append the batch, commit it, and let each proposer propose again.
      const batch = outstanding;
      outstanding = [];
      for (const c of batch) {
        log.push(payload);
        committed++;
        outstanding.push(c);
      }
      if (log.length > 20_000) log = log.slice(-1_000);
    }
    t = nowNs();
  }
  return committed / (Number(t - t0) / 1e9);
}

export default async function raftBench(): Promise<Metric[]> {
  const durationMs = scale(1500, 400);
  const runs = quick ? 1 : 3;
  const results: Metric[] = [];
  // JIT warm-up of both loops before anything is measured.
  runBaseline(64, scale(300, 100));
  runRaft(64, 0, scale(600, 200));
  for (const delayUs of [0, 100]) {
    for (const concurrency of [1, 64, 512]) {
      const raftRates: number[] = [];
      const baseRates: number[] = [];
      for (let r = 0; r < runs; r++) {
        baseRates.push(runBaseline(concurrency, durationMs / 2));
        raftRates.push(runRaft(concurrency, delayUs, durationMs));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const name = delayUs === 0 ? `raft.commit.3nodes.c${concurrency}` : `raft.commit.3nodes.delay100us.c${concurrency}`;
      results.push(
        withBaseline({ metric: name, value: Math.round(median(raftRates)), unit: 'ops/s' }, `memory_append.c${concurrency}`, Math.round(median(baseRates))),
      );
    }
  }
  return results;
}
