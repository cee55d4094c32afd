import { readFileSync, readdirSync } from 'node:fs';

/**
 * CPU time used so far by the processes `pids`, all their threads, in milliseconds, from Linux's
 * per-thread schedstat (nanoseconds on a CPU; /proc/PID/stat's ticks are 10 ms, too coarse for a
 * 100 ms round). Undefined where /proc cannot tell (not Linux, a process gone): callers then
 * leave the CPU figures out rather than report a wrong one.
 *
 * Why a benchmark wants it: on a machine whose cores are all busy (this project's 2-vCPU VM is,
 * at 16 in flight), throughput follows CPU-seconds per byte summed over every process, and that
 * figure drifts far less with the machine than a rate does.
 */
export function cpuMs(pids: readonly number[]): number | undefined {
  if (pids.length === 0) return undefined;
  let ns = 0;
  try {
    for (const pid of pids) {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ', 1)[0]);
        } catch (err) {
          // A thread that ended between the listing and the read took its time with it.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
  } catch {
    return undefined;
  }
  return Number.isFinite(ns) ? ns / 1e6 : undefined;
}

/** Runs `fn` and returns its result with the CPU milliseconds `pids` spent meanwhile. */
export async function withCpu<T>(pids: readonly number[], fn: () => Promise<T>): Promise<{ value: T; cpuMs: number | undefined }> {
  const before = cpuMs(pids);
  const value = await fn();
  const after = cpuMs(pids);
  return { value, cpuMs: before === undefined || after === undefined ? undefined : after - before };
}
