/**
 * Crash tests: a child process persists a seeded workload to the LevelDB raft log and is
 * SIGKILLed at a seeded moment; the parent reopens the folder and requires the state to be
 * exactly the state after some step j with acked <= j <= acked + 1 (every acknowledged step is
 * there; the step in flight is all there or not at all, never torn). Then the next child resumes
 * from j + 1 on the same folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '@tw/raft';
import { LevelRaftStorage } from '../src/index.js';
import { digest, planStep } from './crash-plan.js';

const SEEDS = [11, 12, 13];
const ROUNDS = 3;
const STEPS_MAX = 400;

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) c.kill('SIGKILL');
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Expected digests after each step 0..n, from the same plan applied to MemoryStorage. */
function expectedDigests(seed: number, n: number): string[] {
  const m = new MemoryStorage();
  const out = [digest(m)];
  for (let k = 1; k <= n; k++) {
    const op = planStep(seed, k, m);
    if (op.kind === 'persist') {
      if (op.snapshot) m.applySnapshot(op.snapshot);
      m.append(op.entries);
      m.setHardState(op.hardState);
    } else if (op.kind === 'compact') m.compact(op.index);
    else m.createSnapshot(op.index, undefined, op.data);
    out.push(digest(m));
  }
  return out;
}

function small(seed: number, k: number, n: number): number {
  const z = Math.imul(seed * 7919 + k * 104729, 0x9e3779b1) >>> 0;
  return ((z ^ (z >>> 15)) >>> 0) % n;
}

/** Runs the child from step `from`; kills it a seeded while after it acknowledged step `killAfter`. */
function runChild(dir: string, seed: number, from: number, killAfter: number, delayMs: number): Promise<{ acked: number; killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=tw-source', '--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), dir, String(seed), String(from), String(STEPS_MAX)], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let acked = from - 1;
    let buf = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ok (\d+)$/.exec(line);
        if (m) acked = Number(m[1]);
        if (m && acked === killAfter && timer === undefined) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      resolve({ acked, killed: signal === 'SIGKILL', stderr });
    });
  });
}

describe('LevelRaftStorage crash safety (SIGKILL between and during persists)', () => {
  it.each(SEEDS)('seed %i: every reopen is a consistent prefix of the workload', async (seed) => {
    const expected = expectedDigests(seed, STEPS_MAX);
    const dir = await mkdtemp(join(tmpdir(), 'tw-raft-crash-'));
    dirs.push(dir);
    let at = 0;
    let inFlightLanded = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = at + 1 + small(seed, round, 12);
      const delayMs = small(seed, round + 100, 12);
      const { acked, killed, stderr } = await runChild(dir, seed, at + 1, killAfter, delayMs);
      expect(stderr, `seed ${seed} round ${round}: child stderr`).toBe('');
      expect(killed, `seed ${seed} round ${round}: child was not killed (acked ${acked})`).toBe(true);
      const st = await LevelRaftStorage.open(dir, { sync: true });
      const d = digest(st);
      await st.close();
      const j = expected.indexOf(d, acked);
      expect(j, `seed ${seed} round ${round}: disk state matches no step >= acked ${acked}`).toBeGreaterThanOrEqual(acked);
      expect(j, `seed ${seed} round ${round}: disk state ahead of the step in flight`).toBeLessThanOrEqual(acked + 1);
      if (j === acked + 1) inFlightLanded++;
      at = j;
    }
    console.log(`seed ${seed}: ${ROUNDS} kills, reached step ${at}; the step in flight at the kill was on disk ${inFlightLanded} times, absent ${ROUNDS - inFlightLanded} times`);
    expect(at).toBeGreaterThan(0);
  });
});
