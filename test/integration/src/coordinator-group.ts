/**
 * A group of real tw-coordinator processes on loopback for fault tests.
 *
 * Topology: each coordinator listens for gRPC on a fixed loopback port (kept across restarts).
 * Raft traffic between coordinators goes through a `FaultProxy` with one port per directed link:
 * coordinator `i`'s config lists peer `j` at the proxy port of link `i -> j` (and itself at its
 * real address), so the test can cut any member off, in both directions, without touching the
 * processes. Clients talk to the coordinators' real addresses directly. (A consequence: the
 * NOT_LEADER hint a follower gives names its proxy port for the leader, which a client that lists
 * real addresses does not follow; it moves on to the next coordinator instead.)
 *
 * Every process is started with `startApp`, so `killAll()` in afterEach stops them; data dirs come
 * from `tempDir` and go with `removeTempDirs()`.
 */
import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { FaultProxy } from './fault-proxy.js';
import { type Child, startApp, tempDir } from './processes.js';

export interface CoordinatorGroupOptions {
  /** Members (default 3). */
  readonly size?: number;
  /** Raft tick (default 30 ms) and election timeout in ticks (default 10). */
  readonly tickMs?: number;
  readonly electionTicks?: number;
  /** Extra config fields for every member (pgCount, redundancy, nodeTimeoutMs...). */
  readonly config?: Record<string, unknown>;
  /** How long a (re)start may take to print "coordinator ready" (default 60 s). */
  readonly startTimeoutMs?: number;
}

export interface Member {
  readonly id: number;
  /** The real gRPC address (clients use it). */
  readonly address: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** The running process, if any. */
  child: Child | undefined;
  adminUrl: string | undefined;
  /** Every process this member has had, oldest first (for logs after a failure). */
  readonly incarnations: Child[];
}

export interface LeaderInfo {
  readonly id: number;
  readonly term: number;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Prometheus text -> sample name (with labels) -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (sp <= 0) continue;
    const v = Number(line.slice(sp + 1));
    if (Number.isFinite(v)) out.set(line.slice(0, sp), v);
  }
  return out;
}

export class CoordinatorGroup {
  readonly members: readonly Member[];
  readonly proxy: FaultProxy;
  readonly #startTimeoutMs: number;

  private constructor(members: Member[], proxy: FaultProxy, startTimeoutMs: number) {
    this.members = members;
    this.proxy = proxy;
    this.#startTimeoutMs = startTimeoutMs;
  }

  /** Writes the configs, starts the proxy and every member, and waits until each is ready. */
  static async start(options: CoordinatorGroupOptions = {}): Promise<CoordinatorGroup> {
    const size = options.size ?? 3;
    const ports = await Promise.all(Array.from({ length: size }, freePort));
    const real = new Map(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`] as const));
    const proxy = await FaultProxy.start(real);
    const members: Member[] = [];
    for (const [id, address] of real) {
      const dataDir = tempDir(`coord-${id}`);
      const configFile = join(dataDir, 'config.json');
      const peers = [...real.keys()].map((peer) => ({ id: peer, address: peer === id ? address : proxy.address(id, peer) }));
      const config = {
        id,
        dataDir,
        listen: { host: '127.0.0.1', port: ports[id - 1]! },
        admin: { host: '127.0.0.1', port: 0 },
        peers,
        tickMs: options.tickMs ?? 30,
        electionTicks: options.electionTicks ?? 10,
        ...options.config,
      };
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      members.push({ id, address, dataDir, configFile, child: undefined, adminUrl: undefined, incarnations: [] });
    }
    const group = new CoordinatorGroup(members, proxy, options.startTimeoutMs ?? 60_000);
    try {
      await Promise.all(members.map((m) => group.restart(m.id)));
    } catch (err) {
      await group.close();
      throw err;
    }
    return group;
  }

  member(id: number): Member {
    const m = this.members.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no coordinator ${id}`);
    return m;
  }

  /** Real gRPC addresses of every member, for clients. */
  get addresses(): string[] {
    return this.members.map((m) => m.address);
  }

  /** Starts member `id` (again) on its data dir and waits for "coordinator ready". */
  async restart(id: number): Promise<void> {
    const m = this.member(id);
    if (m.child !== undefined) throw new Error(`coordinator ${id} is still running (pid ${m.child.pid})`);
    const child = startApp('coordinator', ['--config', m.configFile]);
    m.child = child;
    m.adminUrl = undefined;
    m.incarnations.push(child);
    void child.exited.then(() => {
      if (m.child === child) {
        m.child = undefined;
        m.adminUrl = undefined;
      }
    });
    const ready = await child.waitForLog((l) => l['msg'] === 'coordinator ready', this.#startTimeoutMs);
    m.adminUrl = String(ready['adminUrl']);
  }

  /** SIGKILLs member `id` by pid and waits for the process to be gone. */
  async kill(id: number): Promise<void> {
    const m = this.member(id);
    const child = m.child;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await child.exited;
    if (m.child === child) {
      m.child = undefined;
      m.adminUrl = undefined;
    }
  }

  /** Member `id`'s metrics, or undefined when it is down or does not answer within `timeoutMs`. */
  async metrics(id: number, timeoutMs = 2000): Promise<Map<string, number> | undefined> {
    const url = this.member(id).adminUrl;
    if (url === undefined) return undefined;
    try {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return undefined;
      return parseMetrics(await res.text());
    } catch {
      return undefined;
    }
  }

  /** Member `id`'s /readyz answer (status and body), or undefined when it does not answer. */
  async readiness(id: number, timeoutMs = 2000): Promise<string | undefined> {
    const url = this.member(id).adminUrl;
    if (url === undefined) return undefined;
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
      return `${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch {
      return undefined;
    }
  }

  /**
   * The member that reports itself leader with the highest term (a deposed leader may still think
   * it leads for a moment), among members whose ids are in `among` (default all). Polls until
   * found or `timeoutMs` passes.
   */
  async findLeader(timeoutMs = 20_000, among?: readonly number[]): Promise<LeaderInfo> {
    const deadline = Date.now() + timeoutMs;
    const ids = among ?? this.members.map((m) => m.id);
    for (let round = 0; round < 10_000 && Date.now() < deadline; round++) {
      const seen = await Promise.all(ids.map(async (id) => ({ id, m: await this.metrics(id) })));
      let best: LeaderInfo | undefined;
      for (const { id, m } of seen) {
        if (m?.get('tw_coordinator_is_leader') !== 1) continue;
        const term = m.get('tw_coordinator_term') ?? 0;
        if (best === undefined || term > best.term) best = { id, term };
      }
      if (best !== undefined) return best;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no leader among coordinators ${ids.join(',')} within ${timeoutMs} ms`);
  }

  /** The last `lines` log lines of every incarnation of member `id`, for failure reports. */
  logTail(id: number, lines = 40): string {
    const m = this.member(id);
    return m.incarnations
      .map((c, i) => `--- coordinator ${id} incarnation ${i} (pid ${c.pid}) ---\n${[...c.logs.slice(-lines).map((l) => JSON.stringify(l)), ...c.text.slice(-lines)].join('\n')}`)
      .join('\n');
  }

  /** Writes every incarnation's full log of every member under `dir`; returns the file names. */
  dumpLogs(dir: string): string[] {
    const files: string[] = [];
    for (const m of this.members) {
      m.incarnations.forEach((c, i) => {
        const f = join(dir, `coordinator-${m.id}-${i}-pid${c.pid}.log`);
        writeFileSync(f, [...c.logs.map((l) => JSON.stringify(l)), ...c.text].join('\n') + '\n');
        files.push(f);
      });
    }
    return files;
  }

  /** SIGKILLs every member and closes the proxy. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m.id)));
    await this.proxy.close();
  }
}
