/**
 * Profiling aid for the coordinator benchmark (not used by `npm run bench`): preloaded into a
 * coordinator process with `--import`, it times classic-level's batch (sync or not) and getMany
 * calls, and the gaps between them, and prints a summary line to stderr every 2 s.
 *
 *   TW_SPANS=1 NODE_OPTIONS='--import ./bench/lib/coordinator-spans.ts' ...
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { PerformanceObserver } from 'node:perf_hooks';
import { ClassicLevel } from 'classic-level';
import { BlockMapStateMachine } from '@tw/coordinator-service';
import { RawNode } from '@tw/raft';
import { LevelRaftStorage } from '@tw/raft-storage-level';

interface Span {
  n: number;
  totalMs: number;
  maxMs: number;
  items: number;
}
const spans = new Map<string, Span>();
function record(name: string, ms: number, items: number): void {
  let s = spans.get(name);
  if (s === undefined) {
    s = { n: 0, totalMs: 0, maxMs: 0, items: 0 };
    spans.set(name, s);
  }
  s.n++;
  s.totalMs += ms;
  s.items += items;
  if (ms > s.maxMs) s.maxMs = ms;
}

type AnyFn = (...args: unknown[]) => Promise<unknown>;
const proto = ClassicLevel.prototype as unknown as Record<string, AnyFn>;
// The private _batch: the public array batch ends there, and the block map's store calls it
// directly (level-kv-store.ts), so every array batch is timed once.
for (const method of ['_batch', 'getMany'] as const) {
  const orig = proto[method]!;
  proto[method] = function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const first = args[0];
    const opts = args[1] as { sync?: boolean } | undefined;
    const name = method === '_batch' ? (opts?.sync === false ? 'batch.nosync' : opts?.sync === true ? 'batch.sync' : 'batch.default') : 'getMany';
    const t = performance.now();
    const p = orig.apply(this, args);
    const items = Array.isArray(first) ? first.length : 0;
    void p.then(
      () => record(name, performance.now() - t, items),
      () => undefined,
    );
    return p;
  };
}

// Raft-level spans: persist (what a Ready writes), state-machine apply, one Ready loop turn
// (RawNode.ready -> advance), and how many entries each Ready carries.
const persistProto = LevelRaftStorage.prototype as unknown as Record<string, AnyFn>;
const origPersist = persistProto['persist']!;
persistProto['persist'] = function (this: unknown, ...args: unknown[]): Promise<unknown> {
  const u = args[0] as { entries?: unknown[]; hardState?: unknown; snapshot?: unknown; confState?: unknown };
  const kind = u.entries?.length ? 'persist.entries' : u.hardState !== undefined ? 'persist.hardstate_only' : 'persist.other';
  const t = performance.now();
  const p = origPersist.apply(this, args);
  void p.then(() => record(kind, performance.now() - t, u.entries?.length ?? 0), () => undefined);
  return p;
};
const smProto = BlockMapStateMachine.prototype as unknown as Record<string, AnyFn>;
const origApply = smProto['apply']!;
smProto['apply'] = function (this: unknown, ...args: unknown[]): Promise<unknown> {
  const t = performance.now();
  const p = origApply.apply(this, args);
  void p.then(() => record('sm.apply', performance.now() - t, 1), () => undefined);
  return p;
};
const rawProto = RawNode.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
const origReady = rawProto['ready']!;
const origAdvance = rawProto['advance']!;
let readyAt = 0;
rawProto['ready'] = function (this: unknown, ...args: unknown[]): unknown {
  const rd = origReady.apply(this, args) as { entries: unknown[]; committedEntries: unknown[]; messages: unknown[] };
  readyAt = performance.now();
  record('ready.entries', 0, rd.entries.length);
  record('ready.committed', 0, rd.committedEntries.length);
  record('ready.messages', 0, rd.messages.length);
  return rd;
};
rawProto['advance'] = function (this: unknown, ...args: unknown[]): unknown {
  record('ready.turn', performance.now() - readyAt, 0);
  return origAdvance.apply(this, args);
};

// Event-loop lag: how late a 10 ms timer fires.
let expected = performance.now() + 10;
setInterval(() => {
  const now = performance.now();
  record('loop.lag', Math.max(0, now - expected), 0);
  expected = now + 10;
}, 10).unref();

// Garbage collections on the main thread, by kind (what the GC helper threads do is not seen here).
const GC_KINDS: Record<number, string> = { 1: 'gc.minor', 4: 'gc.major', 8: 'gc.incremental', 16: 'gc.weakcb' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e.detail as { kind?: number } | null)?.kind ?? 0;
    record(GC_KINDS[kind] ?? `gc.${kind}`, e.duration, 0);
  }
}).observe({ entryTypes: ['gc'] });

setInterval(() => {
  const parts: string[] = [];
  for (const [name, s] of spans) {
    parts.push(`${name}: n=${s.n} avg=${(s.totalMs / Math.max(1, s.n)).toFixed(2)}ms max=${s.maxMs.toFixed(1)}ms items/call=${(s.items / Math.max(1, s.n)).toFixed(1)}`);
  }
  spans.clear();
  if (parts.length > 0) process.stderr.write(`[spans pid=${process.pid}] ${parts.join(' | ')}\n`);
}, 2000).unref();

// CPU profile (NODE_OPTIONS refuses --cpu-prof): with TW_CPU_PROF_DIR set, the first SIGUSR2
// starts the V8 profiler and the second writes TW_CPU_PROF_DIR/PID.cpuprofile.
const profDir = process.env['TW_CPU_PROF_DIR'];
if (profDir !== undefined && profDir !== '') {
  const session = new Session();
  session.connect();
  let profiling = false;
  process.on('SIGUSR2', () => {
    if (!profiling) {
      profiling = true;
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 500 }, () => session.post('Profiler.start')));
      return;
    }
    profiling = false;
    session.post('Profiler.stop', (err, res) => {
      if (err === null) writeFileSync(`${profDir}/${process.pid}.cpuprofile`, JSON.stringify(res.profile));
      process.stderr.write(`[spans pid=${process.pid}] profile written\n`);
    });
  });
}
