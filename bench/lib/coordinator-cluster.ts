/**
 * A 3-process coordinator group on loopback for benchmarks: each member is the real
 * `apps/coordinator` binary (fsync'd Raft log, as in production) with its own temp data dir.
 * Members can be SIGKILLed and restarted on the same ports and data.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, appEnv } from '@tw/twctl';
import { spawnTs, stopChild } from './raw-baselines.js';

const here = dirname(fileURLToPath(import.meta.url));
const MAIN = join(here, '..', '..', 'apps', 'coordinator', 'src', 'main.ts');

export interface CoordinatorGroupOptions {
  readonly size: number;
  readonly tickMs: number;
  readonly electionTicks: number;
  /** Extra config fields for every member (redundancy, pgCount...). */
  readonly extra?: Record<string, unknown>;
}

export interface Member {
  readonly id: number;
  readonly address: string;
  readonly adminUrl: string;
  readonly dataDir: string;
  readonly configFile: string;
  child: ChildProcess | undefined;
}

export interface MemberStatus {
  isLeader: boolean;
  term: number;
  commitIndex: number;
  appliedIndex: number;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class CoordinatorGroup {
  private constructor(
    readonly members: Member[],
    private readonly root: string,
  ) {}

  static async start(opts: CoordinatorGroupOptions): Promise<CoordinatorGroup> {
    const root = mkdtempSync(join(tmpdir(), 'tw-bench-coord-'));
    const ports: number[] = [];
    for (let i = 0; i < opts.size * 2; i++) ports.push(await freePort());
    const peers = Array.from({ length: opts.size }, (_, i) => ({ id: i + 1, address: `127.0.0.1:${ports[2 * i]!}` }));
    const members: Member[] = peers.map((p, i) => {
      const dataDir = join(root, `c${p.id}`);
      const configFile = join(root, `c${p.id}.json`);
      const adminPort = ports[2 * i + 1]!;
      const config = {
        id: p.id,
        dataDir,
        listen: { host: '127.0.0.1', port: ports[2 * i]! },
        admin: { host: '127.0.0.1', port: adminPort },
        peers,
        tickMs: opts.tickMs,
        electionTicks: opts.electionTicks,
        nodeTimeoutMs: 3_600_000,
        logLevel: 'info',
        ...opts.extra,
      };
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      return { id: p.id, address: p.address, adminUrl: `http://127.0.0.1:${adminPort}`, dataDir, configFile, child: undefined };
    });
    const group = new CoordinatorGroup(members, root);
    try {
      await Promise.all(members.map((m) => group.startMember(m)));
    } catch (err) {
      await group.stop();
      throw err;
    }
    return group;
  }

  get addresses(): string[] {
    return this.members.map((m) => m.address);
  }

  /** Starts (or restarts) a member; resolves once it logged "coordinator ready". */
  async startMember(m: Member): Promise<void> {
    // The coordinator's V8 flags and environment, as `npm start`, its bin shim and its systemd
    // unit run it. BENCH_COORD_PROF=DIR: each coordinator writes a V8 CPU profile there on exit.
    const prof = process.env['BENCH_COORD_PROF'];
    const flags = [...(NODE_FLAGS['coordinator'] ?? []), ...(prof === undefined || prof === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', prof])];
    const { child } = await spawnTs(MAIN, ['--config', m.configFile], (line) => line['msg'] === 'coordinator ready', flags, appEnv('coordinator'));
    m.child = child;
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(m: Member): Promise<void> {
    const c = m.child;
    m.child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  /** A member's Raft status from its Prometheus endpoint (undefined when it does not answer). */
  async status(m: Member): Promise<MemberStatus | undefined> {
    if (m.child === undefined) return undefined;
    try {
      const res = await fetch(`${m.adminUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      const num = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      return { isLeader: num('tw_coordinator_is_leader') === 1, term: num('tw_coordinator_term'), commitIndex: num('tw_coordinator_commit_index'), appliedIndex: num('tw_coordinator_applied_index') };
    } catch {
      return undefined;
    }
  }

  /** The member that leads in the highest term seen, waiting up to `timeoutMs`. */
  async leader(timeoutMs = 20_000): Promise<Member> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      const st = await Promise.all(this.members.map((m) => this.status(m)));
      let best: { m: Member; term: number } | undefined;
      st.forEach((s, i) => {
        if (s?.isLeader && (best === undefined || s.term > best.term)) best = { m: this.members[i]!, term: s.term };
      });
      if (best !== undefined) return best.m;
      await sleep(50);
    }
    throw new Error('no coordinator leads');
  }

  /** Waits until every running member has applied at least the leader's commit index (bounded). */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const leader = await this.leader(timeoutMs);
    const target = (await this.status(leader))?.commitIndex ?? 0;
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      const st = await Promise.all(this.members.map((m) => this.status(m)));
      if (st.every((s) => s !== undefined && s.appliedIndex >= target)) return;
      await sleep(50);
    }
    throw new Error(`members did not catch up to index ${target}`);
  }

  async stop(): Promise<void> {
    for (const m of this.members) {
      const c = m.child;
      m.child = undefined;
      if (c !== undefined) await stopChild(c);
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}
