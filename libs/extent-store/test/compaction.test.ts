import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

async function make(dir: string, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 256 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 }, ...extra });
  stores.push(s);
  return s;
}

async function reopen(s: ExtentStore, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  await s.close();
  stores.splice(stores.indexOf(s), 1);
  return make(s.dir, extra);
}

const size = (i: number): number => 5 * KiB + ((i * 7717) % (40 * KiB));

describe('compaction', () => {
  it('reclaims garbage, keeps live data, survives reopen', async () => {
    let s = await make(dirs.make());
    for (let i = 0; i < 60; i++) await s.put(idOf(`k${i}`), bytesFor(i, size(i)));
    for (let i = 0; i < 60; i++) if (i % 4 !== 0) await s.delete(idOf(`k${i}`));
    const before = s.capacity();
    const r = await s.compact();
    expect(r.extentsCompacted).toBeGreaterThan(0);
    const after = s.capacity();
    expect(after.garbageBytes).toBeLessThan(before.garbageBytes);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.extentCount).toBeLessThan(before.extentCount);
    for (let i = 0; i < 60; i++) {
      const g = await s.get(idOf(`k${i}`));
      if (i % 4 === 0) expect(g!.bytes.equals(bytesFor(i, size(i)))).toBe(true);
      else expect(g).toBeUndefined();
    }
    s = await reopen(s);
    expect(s.capacity().liveBytes).toBe(before.liveBytes);
    for (let i = 0; i < 60; i += 4) expect((await s.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, size(i)))).toBe(true);
  });

  it('reads racing compaction get the data, never wrong bytes', async () => {
    const s = await make(dirs.make());
    for (let i = 0; i < 80; i++) await s.put(idOf(`k${i}`), bytesFor(i, size(i)));
    for (let i = 0; i < 80; i++) if (i % 3 !== 0) await s.delete(idOf(`k${i}`));
    let stop = false;
    let reads = 0;
    const readers = Array.from({ length: 4 }, async (_, r) => {
      for (let n = 0; n < 20_000 && !stop; n++) {
        const i = ((n * 4 + r) % 27) * 3;
        const g = await s.get(idOf(`k${i}`));
        expect(g!.bytes.equals(bytesFor(i, size(i)))).toBe(true);
        reads++;
      }
    });
    const res = await s.compact({ garbageRatioMin: 0.1 });
    stop = true;
    await Promise.all(readers);
    expect(res.recordsMoved).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
  });

  it('puts racing compaction win over the moved copy', async () => {
    const s = await make(dirs.make());
    for (let i = 0; i < 40; i++) await s.put(idOf(`k${i}`), bytesFor(i, size(i)));
    for (let i = 0; i < 40; i++) if (i % 2) await s.delete(idOf(`k${i}`));
    const compaction = s.compact({ garbageRatioMin: 0.1 });
    await Promise.all(Array.from({ length: 20 }, (_, j) => s.put(idOf(`k${j * 2}`), bytesFor(1000 + j, 3000))));
    await compaction;
    for (let j = 0; j < 20; j++) expect((await s.get(idOf(`k${j * 2}`)))!.bytes.equals(bytesFor(1000 + j, 3000))).toBe(true);
  });

  it('keeps tombstones that shadow older puts, so rebuildIndex does not resurrect deletes', async () => {
    let s = await make(dirs.make());
    await s.put(idOf('victim'), bytesFor(1, 10 * KiB)); // extent 1, with keepers that stay live
    for (let i = 0; i < 8; i++) await s.put(idOf(`keep${i}`), bytesFor(100 + i, 30 * KiB)); // the 8th rolls over
    const victimExtent = (await s.stat(idOf('victim')))!.extentNo;
    await s.delete(idOf('victim')); // the tombstone lands in a later extent
    expect(s.extents().length).toBe(2);
    for (let i = 0; i < 16; i++) await s.put(idOf(`junk${i}`), bytesFor(i, 30 * KiB));
    for (let i = 0; i < 16; i++) await s.delete(idOf(`junk${i}`));
    const r = await s.compact({ garbageRatioMin: 0.5 });
    expect(r.extentsCompacted).toBeGreaterThan(0);
    // Extent 1 (low garbage) was left alone and still holds the victim's old put record.
    expect(s.extents().some((e) => e.extentNo === victimExtent)).toBe(true);
    await s.rebuildIndex();
    expect(await s.get(idOf('victim'))).toBeUndefined();
    s = await reopen(s, { rebuildIndex: true });
    expect(await s.get(idOf('victim'))).toBeUndefined();
    for (let i = 0; i < 8; i++) expect((await s.get(idOf(`keep${i}`)))!.bytes.equals(bytesFor(100 + i, 30 * KiB))).toBe(true);
  });

  it('a compaction that fails (EIO on the output) leaves every fragment readable', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 3);
    let s = await make(dir, { files: faulty });
    for (let i = 0; i < 40; i++) await s.put(idOf(`k${i}`), bytesFor(i, size(i)));
    for (let i = 0; i < 40; i++) if (i % 2) await s.delete(idOf(`k${i}`));
    const extentsBefore = new Set(s.extents().map((e) => e.extentNo));
    faulty.faults.eioOnSync = (path) => ![...extentsBefore].some((n) => path.endsWith(`${String(n).padStart(10, '0')}.twx`));
    await expect(s.compact({ garbageRatioMin: 0.1 })).rejects.toMatchObject({ code: 'TW_EXTENT_IO' });
    faulty.faults.eioOnSync = undefined;
    for (let i = 0; i < 40; i += 2) expect((await s.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, size(i)))).toBe(true);
    s = await reopen(s);
    for (let i = 0; i < 40; i += 2) expect((await s.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, size(i)))).toBe(true);
    await s.compact({ garbageRatioMin: 0.1 });
    for (let i = 0; i < 40; i++) expect((await s.get(idOf(`k${i}`))) !== undefined).toBe(i % 2 === 0);
  });
});

describe('index rebuild', () => {
  it('rebuilds a lost index from the extents: latest put wins, deletes stay deleted', async () => {
    const dir = dirs.make();
    let s = await make(dir);
    for (let i = 0; i < 30; i++) await s.put(idOf(`k${i}`), bytesFor(i, size(i)));
    for (let i = 0; i < 30; i += 3) await s.put(idOf(`k${i}`), bytesFor(500 + i, size(i + 1)));
    for (let i = 1; i < 30; i += 3) await s.delete(idOf(`k${i}`));
    const cap = s.capacity();
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    rmSync(join(dir, 'index'), { recursive: true, force: true });
    s = await make(dir);
    // freeBytes follows the shared file system; everything else must match exactly.
    expect({ ...s.capacity(), freeBytes: 0 }).toEqual({ ...cap, freeBytes: 0 });
    for (let i = 0; i < 30; i++) {
      const g = await s.get(idOf(`k${i}`));
      if (i % 3 === 0) expect(g!.bytes.equals(bytesFor(500 + i, size(i + 1)))).toBe(true);
      else if (i % 3 === 1) expect(g).toBeUndefined();
      else expect(g!.bytes.equals(bytesFor(i, size(i)))).toBe(true);
    }
    // New writes after a rebuild sort after every old record.
    await s.put(idOf('k1'), bytesFor(9, 100));
    s = await reopen(s, { rebuildIndex: true });
    expect((await s.get(idOf('k1')))!.bytes.equals(bytesFor(9, 100))).toBe(true);
  });
});

describe('which reads may run on the event loop', () => {
  it('only gets ask for inline reads; recovery, compaction and index rebuilds read through the pool', async () => {
    const files = nodeFileLayer();
    const dir = dirs.make();
    let s = await make(dir, { files });
    for (let i = 0; i < 40; i++) await s.put(idOf(`k${i}`), bytesFor(i, size(i)));
    for (let i = 0; i < 30; i++) await s.delete(idOf(`k${i}`));
    let gets = 0;
    const getLive = async (): Promise<void> => {
      for (let i = 30; i < 40; i++) {
        expect((await s.get(idOf(`k${i}`)))?.bytes.equals(bytesFor(i, size(i)))).toBe(true);
        gets++;
      }
    };
    await getLive();
    const compacted = await s.compact({ garbageRatioMin: 0.1 });
    expect(compacted.extentsCompacted).toBeGreaterThan(0);
    await getLive();
    s = await reopen(s, { files, rebuildIndex: true });
    await getLive();
    const { inlineReads, pooledReads } = files.readStats;
    expect(inlineReads + pooledReads).toBe(gets);
  });
});

describe('dead extents', () => {
  /** A store whose next reclaim pass resolves `reclaimed()`. */
  async function watched(dir: string, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}) {
    const passes: { extentsCompacted: number }[] = [];
    const waiters: (() => void)[] = [];
    const s = await make(dir, {
      onReclaim: (r) => {
        passes.push(r);
        for (const w of waiters.splice(0)) w();
      },
      ...extra,
    });
    // Bounded: a pass that never comes fails the test in 10 s instead of hanging it.
    const reclaimed = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no reclaim pass within 10 s')), 10_000);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    return { s, passes, reclaimed };
  }

  const extentFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.twx'));

  it('drops a sealed extent once its last live record is deleted, without compact()', async () => {
    const dir = dirs.make();
    const { s, passes, reclaimed } = await watched(dir);
    for (let i = 0; i < 12; i++) await s.put(idOf(`a${i}`), bytesFor(i, 30 * KiB)); // 8 a extent: rolls over once
    const first = (await s.stat(idOf('a0')))!.extentNo;
    const inFirst: number[] = [];
    for (let i = 0; i < 12; i++) if ((await s.stat(idOf(`a${i}`)))!.extentNo === first) inFirst.push(i);
    expect(inFirst.length).toBeGreaterThan(1);
    const filesBefore = extentFiles(dir).length;
    const pass = reclaimed();
    for (const i of inFirst) await s.delete(idOf(`a${i}`));
    await pass;
    expect(passes.at(-1)!.extentsCompacted).toBe(1);
    expect(s.extents().some((e) => e.extentNo === first)).toBe(false);
    expect(extentFiles(dir).length).toBe(filesBefore - 1);
    for (let i = 0; i < 12; i++) {
      const g = await s.get(idOf(`a${i}`));
      if (inFirst.includes(i)) expect(g).toBeUndefined();
      else expect(g!.bytes.equals(bytesFor(i, 30 * KiB))).toBe(true);
    }
    const r = await reopen(s, { rebuildIndex: true });
    for (let i = 0; i < 12; i++) expect((await r.get(idOf(`a${i}`))) === undefined).toBe(inFirst.includes(i));
  });

  it('seals and replaces the active extent once everything in it is deleted', async () => {
    const dir = dirs.make();
    const { s, reclaimed } = await watched(dir);
    for (let i = 0; i < 5; i++) await s.put(idOf(`b${i}`), bytesFor(i, 30 * KiB)); // ~150 KiB of a 256 KiB extent
    const active = s.extents().find((e) => e.active)!.extentNo;
    const pass = reclaimed();
    for (let i = 0; i < 5; i++) await s.delete(idOf(`b${i}`));
    await pass;
    expect(s.extents().some((e) => e.extentNo === active)).toBe(false);
    await s.put(idOf('after'), bytesFor(99, 10 * KiB));
    expect((await s.stat(idOf('after')))!.extentNo).toBeGreaterThan(active);
    const r = await reopen(s, { rebuildIndex: true });
    for (let i = 0; i < 5; i++) expect(await r.get(idOf(`b${i}`))).toBeUndefined();
    expect((await r.get(idOf('after')))!.bytes.equals(bytesFor(99, 10 * KiB))).toBe(true);
  });

  it('keeps a dead extent that holds too few bytes, and every dead extent when turned off', async () => {
    const small = await watched(dirs.make());
    await small.s.put(idOf('c0'), bytesFor(1, 20 * KiB)); // under half the extent
    await small.s.delete(idOf('c0'));
    const off = await watched(dirs.make(), { compaction: { reclaimDeadExtents: false } });
    for (let i = 0; i < 5; i++) await off.s.put(idOf(`d${i}`), bytesFor(i, 30 * KiB));
    for (let i = 0; i < 5; i++) await off.s.delete(idOf(`d${i}`));
    // A reclaim pass is scheduled with setImmediate: give one a chance to run.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
    expect(small.passes).toEqual([]);
    expect(off.passes).toEqual([]);
    expect(small.s.extents().length).toBe(1);
    expect(off.s.extents().length).toBe(1);
    expect((await off.s.compact({ garbageRatioMin: 1 })).extentsCompacted).toBe(0); // still the active one
  });

  it('keeps the tombstone of a dropped extent that shadows an older put elsewhere', async () => {
    const dir = dirs.make();
    const { s, reclaimed } = await watched(dir);
    await s.put(idOf('victim'), bytesFor(1, 10 * KiB));
    for (let i = 0; i < 8; i++) await s.put(idOf(`keep${i}`), bytesFor(100 + i, 30 * KiB)); // rolls over; extent 1 stays live
    const victimExtent = (await s.stat(idOf('victim')))!.extentNo;
    await s.delete(idOf('victim')); // tombstone in the second extent
    for (let i = 0; i < 5; i++) await s.put(idOf(`junk${i}`), bytesFor(i, 30 * KiB));
    const pass = reclaimed();
    await s.delete(idOf('keep7')); // the 8th keeper sits in the second extent too
    for (let i = 0; i < 5; i++) await s.delete(idOf(`junk${i}`));
    await pass;
    expect(s.extents().some((e) => e.extentNo === victimExtent)).toBe(true);
    await s.rebuildIndex();
    expect(await s.get(idOf('victim'))).toBeUndefined();
    for (let i = 0; i < 7; i++) expect((await s.get(idOf(`keep${i}`)))!.bytes.equals(bytesFor(100 + i, 30 * KiB))).toBe(true);
  });
});
