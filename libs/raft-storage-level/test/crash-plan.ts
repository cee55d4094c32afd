/**
 * The deterministic workload of the crash tests, shared by the child process (which persists it
 * to LevelDB and gets SIGKILLed) and the parent (which replays it on MemoryStorage to know every
 * state the disk may legally be in). Step k's operation is a pure function of (seed, k, state).
 */
import { createHash } from 'node:crypto';
import { EntryType, type Entry, type HardState, type Snapshot, type Storage } from '@tw/raft';

export type PlanOp =
  | { kind: 'persist'; snapshot?: Snapshot; entries: Entry[]; hardState: HardState }
  | { kind: 'compact'; index: number }
  | { kind: 'createSnapshot'; index: number; data: Uint8Array };

function mix(a: number, b: number): number {
  let z = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) + b) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 13)) >>> 0;
}

function rng(seed: number, k: number): (n: number) => number {
  let s = mix(seed, k);
  return (n) => {
    s = mix(s, 0x6d2b79f5);
    return n <= 1 ? 0 : s % n;
  };
}

function bytes(seed: number, tag: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let s = mix(seed, tag);
  for (let i = 0; i < len; i += 4) {
    s = mix(s, i);
    out[i] = s & 0xff;
    if (i + 1 < len) out[i + 1] = (s >>> 8) & 0xff;
    if (i + 2 < len) out[i + 2] = (s >>> 16) & 0xff;
    if (i + 3 < len) out[i + 3] = s >>> 24;
  }
  return out;
}

export function planStep(seed: number, k: number, st: Storage): PlanOp {
  const r = rng(seed, k);
  const first = st.firstIndex();
  const last = st.lastIndex();
  const hs = st.initialState().hardState;
  const snapIndex = st.snapshot().metadata.index;
  const roll = r(100);
  if (roll < 8) {
    const term = hs.term + 1;
    const index = Math.max(last, snapIndex) + 1 + r(50);
    const snapshot: Snapshot = { metadata: { index, term, confState: { voters: [1, 2, 3], learners: [] } }, data: bytes(seed, k, r(64 << 10)) };
    const entries: Entry[] = [];
    for (let i = 1; i <= r(20); i++) entries.push({ index: index + i, term, type: EntryType.Normal, data: bytes(seed, k * 1000 + i, 50 + r(500)) });
    return { kind: 'persist', snapshot, entries, hardState: { term, vote: 1 + r(3), commit: index } };
  }
  if (roll < 18 && last - first > 10) return { kind: 'compact', index: first + r(last - first) };
  if (roll < 26 && last > snapIndex && last >= first) {
    const lo = Math.max(snapIndex + 1, first - 1);
    return { kind: 'createSnapshot', index: lo + r(last - lo + 1), data: bytes(seed, k, r(32 << 10)) };
  }
  const back = last >= first ? r(Math.min(6, last - first + 1)) : 0;
  const term = back > 0 ? hs.term + 1 : Math.max(hs.term, 1);
  const start = last + 1 - back;
  const entries: Entry[] = [];
  const count = 20 + r(300);
  for (let i = 0; i < count; i++) entries.push({ index: start + i, term, type: EntryType.Normal, data: bytes(seed, (start + i) * 7 + term, 64 + r(1500)) });
  return { kind: 'persist', entries, hardState: { term, vote: 1 + r(3), commit: Math.max(hs.commit, start - 1) } };
}

/** A digest of everything a reader can observe through the Storage interface. */
export function digest(st: Storage): string {
  const h = createHash('sha256');
  const first = st.firstIndex();
  const last = st.lastIndex();
  const snap = st.snapshot();
  h.update(JSON.stringify({ first, last, t: st.term(first - 1), init: st.initialState(), meta: snap.metadata }));
  h.update(snap.data);
  if (last >= first) {
    for (const e of st.entries(first, last + 1, Infinity)) {
      h.update(`|${e.index}:${e.term}:${e.type}:`);
      h.update(e.data);
    }
  }
  return h.digest('hex');
}
