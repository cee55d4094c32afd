import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileLayer, openExtentStore, type ExtentStore, type FileHandle, type FileLayer } from '../src/index.js';
import { extentFileName } from '../src/extent.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

// Races between the write path and compaction, conditional deletes and close. The disk is real;
// the file layer only delays when some calls report back (a slow disk: a boundary we do not own).

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The real file layer, with a switchable delay on fdatasync's and syncDir's completion. */
class SlowDisk {
  readonly inner = nodeFileLayer();
  syncDelayMs = 0;
  syncDirDelayMs = 0;
  #syncEntered: Array<() => void> = [];
  #syncDirEntered: Array<() => void> = [];
  /** Resolves when the next delayed fdatasync (or syncDir) has started. */
  nextSync(): Promise<void> {
    return new Promise((r) => this.#syncEntered.push(r));
  }
  nextSyncDir(): Promise<void> {
    return new Promise((r) => this.#syncDirEntered.push(r));
  }
  readonly layer: FileLayer = {
    open: async (p, m) => this.#wrap(await this.inner.open(p, m)),
    stat: (p) => this.inner.stat(p),
    unlink: (p) => this.inner.unlink(p),
    rename: (a, b) => this.inner.rename(a, b),
    readdir: (d) => this.inner.readdir(d),
    mkdir: (d) => this.inner.mkdir(d),
    freeBytes: (d) => this.inner.freeBytes(d),
    syncDir: async (d) => {
      if (this.syncDirDelayMs > 0) {
        for (const r of this.#syncDirEntered.splice(0)) r();
        await sleep(this.syncDirDelayMs);
      }
      return this.inner.syncDir(d);
    },
  };
  #wrap(h: FileHandle): FileHandle {
    return {
      path: h.path,
      readv: (b, p, o) => h.readv(b, p, o),
      writev: (b, p) => h.writev(b, p),
      datasync: async () => {
        const done = h.datasync(); // issued at once; only its completion is reported late
        if (this.syncDelayMs > 0) {
          for (const r of this.#syncEntered.splice(0)) r();
          await sleep(this.syncDelayMs);
        }
        return done;
      },
      truncate: (n) => h.truncate(n),
      allocate: (n) => h.allocate(n),
      stat: () => h.stat(),
      close: () => h.close(),
    };
  }
}

async function make(dir: string, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 64 * KiB, reserveBytes: 0, compaction: { reclaimDeadExtents: false }, ...extra });
  stores.push(s);
  return s;
}

async function closeAndForget(s: ExtentStore): Promise<void> {
  await s.close();
  stores.splice(stores.indexOf(s), 1);
}

describe('races', () => {
  it('compaction never drops a record whose flush is still syncing (acknowledged next, not indexed yet)', async () => {
    const disk = new SlowDisk();
    const dir = dirs.make();
    const s = await make(dir, { files: disk.layer, fsync: { mode: 'always' } });
    await s.put(idOf('a1'), bytesFor(1, 8 * KiB));
    await s.put(idOf('a2'), bytesFor(2, 8 * KiB));
    await s.delete(idOf('a1'));
    await s.delete(idOf('a2'));
    await s.indexed();
    disk.syncDelayMs = 100;
    const syncing = disk.nextSync();
    // p lands at the tail of extent 1 (mostly garbage); q does not fit, seals extent 1 and opens
    // extent 2. One flush takes both and its fdatasync reports late.
    const p = s.put(idOf('p'), bytesFor(3, 8 * KiB));
    const q = s.put(idOf('q'), bytesFor(4, 30 * KiB));
    await syncing;
    await sleep(10);
    await s.compact({ garbageRatioMin: 0.5 });
    await Promise.all([p, q]);
    disk.syncDelayMs = 0;
    expect((await s.get(idOf('p')))?.bytes.equals(bytesFor(3, 8 * KiB))).toBe(true);
    await closeAndForget(s);
    const s2 = await make(dir);
    expect((await s2.get(idOf('p')))?.bytes.equals(bytesFor(3, 8 * KiB))).toBe(true);
    expect((await s2.get(idOf('q')))?.bytes.equals(bytesFor(4, 30 * KiB))).toBe(true);
  });

  it('a delete with ifSeq deletes the judged version only: a re-put being synced survives it', async () => {
    const disk = new SlowDisk();
    const s = await make(dirs.make(), { files: disk.layer, extentSizeBytes: 1024 * KiB, fsync: { mode: 'always' } });
    const { seq: old } = await s.put(idOf('k'), bytesFor(1, 4 * KiB));
    // A wrong or stale version: nothing is written.
    expect(await s.delete(idOf('k'), { ifSeq: old + 100 })).toBe(false);
    expect(await s.get(idOf('k'))).toBeDefined();
    // A re-put of the same id is written and syncing when the delete of the old version comes.
    disk.syncDelayMs = 60;
    const syncing = disk.nextSync();
    const reput = s.put(idOf('k'), bytesFor(2, 4 * KiB));
    await syncing;
    expect(await s.delete(idOf('k'), { ifSeq: old })).toBe(false);
    const { seq: fresh } = await reput;
    disk.syncDelayMs = 0;
    expect(fresh).toBeGreaterThan(old);
    expect((await s.get(idOf('k')))?.bytes.equals(bytesFor(2, 4 * KiB))).toBe(true);
    // A re-put only reserved (not yet written) counts too: the delete comes after it in the lock.
    const writeLater = s.put(idOf('k'), bytesFor(3, 4 * KiB));
    expect(await s.delete(idOf('k'), { ifSeq: fresh })).toBe(false);
    const { seq: newest } = await writeLater;
    // The version that is current deletes.
    expect(await s.delete(idOf('k'), { ifSeq: newest })).toBe(true);
    expect(await s.get(idOf('k'))).toBeUndefined();
    await expect(s.delete(idOf('k'), { ifSeq: 1.5 })).rejects.toMatchObject({ code: 'TW_EXTENT_ARGUMENT_INVALID' });
  });

  it('close() while a put waits for a new extent: the put, once acknowledged, is indexed before the clean marker', async () => {
    const disk = new SlowDisk();
    const dir = dirs.make();
    // A slow index batch makes the gap between a late record and the clean marker certain.
    let slowIndex = false;
    const s = await make(dir, { files: disk.layer, fsync: { mode: 'always' }, indexHooks: { beforeBatch: () => (slowIndex ? sleep(20) : Promise.resolve()) } });
    await s.put(idOf('a'), bytesFor(1, 40 * KiB));
    disk.syncDirDelayMs = 50;
    slowIndex = true;
    const inNewExtent = disk.nextSyncDir();
    let acked = false;
    const put = s.put(idOf('b'), bytesFor(2, 40 * KiB)).then(
      () => (acked = true),
      () => undefined,
    );
    await inNewExtent; // the put holds the append lock, creating extent 2
    await Promise.all([put, closeAndForget(s)]);
    expect(acked).toBe(true);
    const s2 = await make(dir);
    expect((await s2.get(idOf('b')))?.bytes.equals(bytesFor(2, 40 * KiB))).toBe(true);
  });

  it('a live record whose header rotted is reported as corrupt after compaction removed its extent, not as busy', async () => {
    const dir = dirs.make();
    const reports: string[] = [];
    const opts = { onCorrupt: (r: { reason: string; during: string }) => reports.push(`${r.during}: ${r.reason}`) };
    let s = await make(dir, opts);
    await s.put(idOf('x'), bytesFor(1, 8 * KiB));
    await s.put(idOf('y'), bytesFor(2, 20 * KiB));
    await s.put(idOf('z'), bytesFor(3, 30 * KiB)); // does not fit: extent 1 sealed
    await s.delete(idOf('y'));
    await s.indexed();
    const st = await s.stat(idOf('x'));
    expect(st?.extentNo).toBe(1);
    await closeAndForget(s);
    // One byte of x's header (its sequence number, under the header checksum) flipped on disk.
    const fd = openSync(join(dir, extentFileName(1)), 'r+');
    writeSync(fd, Buffer.from([0xee]), 0, 1, st!.offset + 20);
    closeSync(fd);
    s = await make(dir, opts);
    const r = await s.compact({ garbageRatioMin: 0.3 });
    expect(r.extentsCompacted).toBe(1);
    await expect(s.get(idOf('x'))).rejects.toMatchObject({ code: 'TW_EXTENT_CORRUPT' });
    expect(reports).toContain('get: extent compacted away without this record');
    expect((await s.get(idOf('z')))?.bytes.equals(bytesFor(3, 30 * KiB))).toBe(true);
  });
});
