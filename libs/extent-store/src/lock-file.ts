import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extentErrors } from './errors.js';

/**
 * The data folder's lock: a file `LOCK` holding the owner's pid, created exclusively. A lock
 * left by a dead process (SIGKILL) is taken over; a live owner (or another store of this
 * process) is refused with TW_EXTENT_LOCKED. LevelDB's own fcntl lock on the index backs it up.
 * Node has no flock, hence the pid check; a recycled pid can make a stale lock look live, which
 * errs on the side of refusing.
 */
const heldHere = new Set<string>();

export interface DirLock {
  release(): void;
}

export function lockDataDir(dir: string): DirLock {
  const path = join(dir, 'LOCK');
  if (heldHere.has(path)) {
    throw extentErrors.create('TW_EXTENT_LOCKED', `data folder ${dir} is already open in this process`, { details: { dir } });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      heldHere.add(path);
      return {
        release() {
          heldHere.delete(path);
          try {
            unlinkSync(path);
          } catch {
            // already gone: nothing to release
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let pid = NaN;
    try {
      pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    } catch {
      // vanished or unreadable: treat as stale
    }
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw extentErrors.create('TW_EXTENT_LOCKED', `data folder ${dir} is locked by process ${pid}`, { details: { dir, pid } });
    }
    try {
      unlinkSync(path); // stale: its owner died
    } catch {
      // raced with another taker; the retry decides
    }
  }
  throw extentErrors.create('TW_EXTENT_LOCKED', `could not take the lock of ${dir}`, { details: { dir } });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
