import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * V8 flags per app. The coordinator allocates a short-lived object or buffer per block it applies
 * (commands, records, LevelDB batch ops): with V8's default young generation, scavenges took
 * 17-19 % of its CPU at 20k blocks/s. A 64 MiB semi-space cut CPU per committed block by ~16 %
 * (alternating runs of 512 x 64 commits: 161/148 -> 124/129 CPU-us a block, 11.5-12.8k ->
 * 14.8-15.3k blocks/s; docs/coordinator-performance.md). The same flag is in the coordinator's bin
 * shim and systemd unit.
 */
export const NODE_FLAGS: Readonly<Record<string, readonly string[]>> = { coordinator: ['--max-semi-space-size=64'] };

/**
 * glibc's malloc asks for transparent huge pages (`glibc.malloc.hugetlb=1`, glibc 2.35+; it does
 * nothing where THP is off). On this project's VMs a 4 KiB page fault costs 15-20 us of CPU
 * (measured: fresh buffers touched page by page), and a coordinator under load took ~0.35 minor
 * faults per committed block. With the tunable: 0.2-0.3, and 23.8/24.5/24.1k -> 27.3/26.0/27.9k
 * blocks/s (alternating runs, 512 x 64; docs/coordinator-performance.md). Storage nodes reuse
 * their buffers (~0 faults a put at steady state), so they are left as they are.
 */
export const GLIBC_TUNABLES: Readonly<Record<string, string>> = { coordinator: 'glibc.malloc.hugetlb=1' };

/** The environment to start `app` with: ours plus GLIBC_TUNABLES for it, after any the caller set. */
export function appEnv(app: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const tunables = GLIBC_TUNABLES[app];
  if (tunables === undefined) return base;
  const given = base['GLIBC_TUNABLES'];
  return { ...base, GLIBC_TUNABLES: given === undefined || given === '' ? tunables : `${given}:${tunables}` };
}

/** One child process of the local cluster, its logs going to a file. */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly #log: WriteStream;
  readonly #lines: string[] = [];
  readonly #listeners = new Set<(line: Record<string, unknown>) => void>();
  exitCode: number | string | undefined;
  readonly exited: Promise<number | string>;

  constructor(
    readonly name: string,
    app: string,
    args: readonly string[],
    logFile: string,
  ) {
    this.#log = createWriteStream(logFile, { flags: 'a' });
    const entry = join(repoRoot, 'apps', app, 'src', 'main.ts');
    this.child = spawn(process.execPath, [...(NODE_FLAGS[app] ?? []), '--conditions=tw-source', '--import', 'tsx', entry, ...args], { cwd: repoRoot, env: appEnv(app), stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.#log.write(chunk);
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.#remember(line);
        try {
          const obj = JSON.parse(line) as Record<string, unknown>;
          for (const l of this.#listeners) l(obj);
        } catch {
          /* not JSON */
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#log.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) if (line) this.#remember(line);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? signal ?? 'unknown';
        resolve(this.exitCode);
      });
    });
  }

  #remember(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > 20) this.#lines.shift();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  lastLines(): string {
    return this.#lines.join('\n');
  }

  /** Resolves with the first log line matching `match`; rejects if the process exits or time runs out. */
  waitFor(match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${this.name}: not ready within ${timeoutMs} ms`)), timeoutMs);
      const onLine = (l: Record<string, unknown>): void => {
        if (match(l)) done(undefined, l);
      };
      const onExit = (): void => done(new Error(`${this.name} exited (${this.exitCode})`));
      const done = (err?: Error, line?: Record<string, unknown>): void => {
        clearTimeout(timer);
        this.#listeners.delete(onLine);
        this.child.off('exit', onExit);
        if (err) reject(err);
        else resolve(line!);
      };
      this.#listeners.add(onLine);
      this.child.once('exit', onExit);
    });
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exitCode === undefined) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
    this.#log.end();
  }
}
