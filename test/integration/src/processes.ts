/**
 * Starting the real binaries as child processes for multi-process tests, and making sure they are
 * gone afterwards: every process started here is tracked and killed (by its pid, SIGKILL) by
 * `killAll()`, which tests call in afterEach / afterAll even when they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Every JSON log line printed so far. */
  readonly logs: Record<string, unknown>[];
  /** stdout lines that are not JSON, and all of stderr. */
  readonly text: string[];
  /** Resolves with the first log line for which `match` is true (rejects on exit or timeout). */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

const live = new Set<Child>();

/** Runs `apps/<app>/src/main.ts` from sources (no build needed) with the given arguments. */
export function startApp(app: string, args: string[], env: Record<string, string> = {}): Child {
  const entry = join(repoRoot, 'apps', app, 'src', 'main.ts');
  const proc = spawn(process.execPath, ['--conditions=tw-source', '--import', 'tsx', entry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${app}`);
  const logs: Record<string, unknown>[] = [];
  const text: string[] = [];
  const waiters = new Set<() => void>();
  const onLine = (line: string, json: boolean): void => {
    if (line.length === 0) return;
    if (json) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        text.push(line);
      }
    } else text.push(line);
    for (const w of waiters) w();
  };
  const lineSplitter = (json: boolean) => {
    let buf = '';
    return (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        onLine(buf.slice(0, nl), json);
        buf = buf.slice(nl + 1);
      }
    };
  };
  proc.stdout!.on('data', lineSplitter(true));
  proc.stderr!.on('data', lineSplitter(false));
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(child);
      for (const w of waiters) w();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let exitedNow = false;
  void exited.then(() => (exitedNow = true));
  const child: Child = {
    proc,
    pid: proc.pid,
    logs,
    text,
    exited,
    kill(signal) {
      if (!exitedNow) proc.kill(signal);
    },
    waitForLog(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = logs.find(match);
          if (hit) {
            done();
            resolve(hit);
          } else if (exitedNow) {
            done();
            reject(new Error(`${app} exited before the expected log line; stderr: ${text.slice(-10).join(' | ')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${app}: no matching log line within ${timeoutMs} ms; last lines: ${JSON.stringify(logs.slice(-3))} ${text.slice(-5).join(' | ')}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  live.add(child);
  return child;
}

/** SIGKILLs every child still running and waits for them to exit. */
export async function killAll(): Promise<void> {
  const children = [...live];
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
}

const tempDirs = new Set<string>();

/** A fresh temp folder, removed by `removeTempDirs()`. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `tw-${prefix}-`));
  tempDirs.add(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
