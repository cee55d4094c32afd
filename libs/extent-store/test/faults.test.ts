import { afterEach, describe, expect, it } from 'vitest';
import { isTwError } from '@tw/errors';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, type CorruptionReport, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

async function make(dir: string, files: FaultyFileLayer | undefined, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  const s = await openExtentStore({
    dir,
    extentSizeBytes: 512 * KiB,
    reserveBytes: 0,
    fsync: { mode: 'group', intervalMs: 1 },
    ...(files ? { files } : {}),
    ...extra,
  });
  stores.push(s);
  return s;
}

/** Puts `n` fragments concurrently; returns the ids whose put was acknowledged. */
async function putMany(s: ExtentStore, n: number, seedBase: number, sizeOf: (i: number) => number): Promise<Set<number>> {
  const acked = new Set<number>();
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      try {
        await s.put(idOf(`frag-${i}`), bytesFor(seedBase + i, sizeOf(i)));
        acked.add(i);
      } catch {
        // not acknowledged
      }
    }),
  );
  return acked;
}

async function checkAfterCrash(s: ExtentStore, n: number, seedBase: number, sizeOf: (i: number) => number, acked: Set<number>): Promise<number> {
  let present = 0;
  for (let i = 0; i < n; i++) {
    const r = await s.get(idOf(`frag-${i}`));
    if (acked.has(i)) expect(r, `acked fragment ${i} lost`).toBeDefined();
    if (r !== undefined) {
      present++;
      // Present means whole: never a partial record, acknowledged or not.
      expect(r.bytes.equals(bytesFor(seedBase + i, sizeOf(i))), `fragment ${i} differs`).toBe(true);
    }
  }
  return present;
}

describe('fault injection', () => {
  for (let seed = 1; seed <= 6; seed++) {
    it(`torn write then process crash (seed ${seed}): every acknowledged put survives, nothing partial`, async () => {
      const dir = dirs.make();
      const faulty = new FaultyFileLayer(nodeFileLayer(), seed);
      const s = await make(dir, faulty);
      const sizeOf = (i: number): number => 1000 + ((i * 7919 * seed) % (120 * KiB));
      faulty.faults.crashOnWrite = 5 + faulty.randomInt(40);
      const acked = await putMany(s, 60, seed * 1000, sizeOf);
      expect(faulty.crashed).toBe(true);
      await s.close();
      stores.splice(stores.indexOf(s), 1);
      const s2 = await make(dir, undefined);
      await checkAfterCrash(s2, 60, seed * 1000, sizeOf, acked);
      // The store keeps working after recovery.
      await s2.put(idOf('after'), bytesFor(1, 5000));
      expect((await s2.get(idOf('after')))!.bytes.equals(bytesFor(1, 5000))).toBe(true);
    });
  }

  for (let seed = 1; seed <= 6; seed++) {
    it(`power loss drops unsynced writes (seed ${seed}): acknowledged puts survive`, async () => {
      const dir = dirs.make();
      const inner = nodeFileLayer();
      const faulty = new FaultyFileLayer(inner, seed);
      const s = await make(dir, faulty, { fsync: { mode: 'group', intervalMs: 3 } });
      const sizeOf = (i: number): number => 500 + ((i * 104729 * seed) % (90 * KiB));
      const acked = new Set<number>();
      // Acknowledged ones first, then a burst in flight when the power goes.
      for (const i of await putMany(s, 20, seed, sizeOf)) acked.add(i);
      const burst = Promise.all(
        Array.from({ length: 20 }, (_, k) =>
          s.put(idOf(`frag-${20 + k}`), bytesFor(seed + 20 + k, sizeOf(20 + k))).then(
            () => acked.add(20 + k),
            () => undefined,
          ),
        ),
      );
      await new Promise((r) => setTimeout(r, faulty.randomInt(6)));
      await faulty.powerLoss();
      await burst;
      await s.close();
      stores.splice(stores.indexOf(s), 1);
      const s2 = await make(dir, new FaultyFileLayer(inner, seed + 100));
      await checkAfterCrash(s2, 40, seed, sizeOf, acked);
    });
  }

  it('bit flip on read: TW_EXTENT_CORRUPT and a report, then the good copy on a clean read', async () => {
    const reports: CorruptionReport[] = [];
    const faulty = new FaultyFileLayer(nodeFileLayer(), 7);
    const s = await make(dirs.make(), faulty, { onCorrupt: (r) => reports.push(r) });
    const a = bytesFor(3, 40 * KiB);
    await s.put(idOf('a'), a);
    faulty.faults.flipOnRead = () => true;
    const err = await s.get(idOf('a')).catch((e: unknown) => e);
    expect(isTwError(err, 'TW_EXTENT_CORRUPT')).toBe(true);
    expect(reports.length).toBe(1);
    faulty.faults.flipOnRead = undefined;
    expect((await s.get(idOf('a')))!.bytes.equals(a)).toBe(true);
  });

  it('bit flip on disk in the header or payload is caught by every read path', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 8);
    const reports: CorruptionReport[] = [];
    const s = await make(dir, faulty, { onCorrupt: (r) => reports.push(r) });
    await s.put(idOf('h'), bytesFor(1, 9000));
    await s.put(idOf('p'), bytesFor(2, 9000));
    const h = (await s.stat(idOf('h')))!;
    const p = (await s.stat(idOf('p')))!;
    const path = `${dir}/extent-${String(h.extentNo).padStart(10, '0')}.twx`;
    await faulty.flipBitOnDisk(path, h.offset + 20, 3); // inside the header
    await faulty.flipBitOnDisk(path, p.offset + 4000, 5); // inside the payload
    for (const id of ['h', 'p']) {
      const err = await s.get(idOf(id)).catch((e: unknown) => e);
      expect(isTwError(err, 'TW_EXTENT_CORRUPT'), id).toBe(true);
    }
    expect(reports.map((r) => r.during)).toEqual(['get', 'get']);
  });

  it('ENOSPC from the file system: the put fails with TW_EXTENT_FULL and is not visible', async () => {
    const faulty = new FaultyFileLayer(nodeFileLayer(), 9);
    const s = await make(dirs.make(), faulty);
    await s.put(idOf('ok'), bytesFor(1, 1000));
    faulty.faults.enospcAfterBytes = 30 * KiB;
    const err = await s.put(idOf('big'), bytesFor(2, 100 * KiB)).catch((e: unknown) => e);
    expect(isTwError(err, 'TW_EXTENT_FULL')).toBe(true);
    expect(await s.get(idOf('big'))).toBeUndefined();
    expect((await s.get(idOf('ok')))!.bytes.equals(bytesFor(1, 1000))).toBe(true);
  });

  it('EIO on write and on fdatasync: not acknowledged, later puts go on', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 10);
    const s = await make(dir, faulty);
    faulty.faults.eioOnWrite = () => true;
    expect(await s.put(idOf('w'), bytesFor(1, 100)).catch((e: { code: string }) => e.code)).toBe('TW_EXTENT_IO');
    faulty.faults.eioOnWrite = undefined;
    faulty.faults.eioOnSync = () => true;
    expect(await s.put(idOf('s'), bytesFor(2, 100)).catch((e: { code: string }) => e.code)).toBe('TW_EXTENT_IO');
    faulty.faults.eioOnSync = undefined;
    await s.put(idOf('t'), bytesFor(3, 100));
    expect(await s.get(idOf('w'))).toBeUndefined();
    expect(await s.get(idOf('s'))).toBeUndefined();
    expect((await s.get(idOf('t')))!.bytes.equals(bytesFor(3, 100))).toBe(true);
    // The extent whose sync failed was sealed: the good put went to a new one.
    expect(s.capacity().extentCount).toBe(2);
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    const s2 = await make(dir, undefined);
    expect(await s2.get(idOf('s'))).toBeUndefined();
    expect((await s2.get(idOf('t')))!.bytes.equals(bytesFor(3, 100))).toBe(true);
  });

  it('a failed write leaves its region as garbage; the store writes on after it', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 11);
    const s = await make(dir, faulty);
    await s.put(idOf('a'), bytesFor(1, 10 * KiB));
    faulty.faults.crashOnWrite = 1;
    await expect(s.put(idOf('b'), bytesFor(2, 200 * KiB))).rejects.toBeDefined();
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    const s2 = await make(dir, undefined);
    expect(await s2.get(idOf('b'))).toBeUndefined();
    await s2.put(idOf('c'), bytesFor(3, 1000));
    expect((await s2.get(idOf('c')))!.bytes.equals(bytesFor(3, 1000))).toBe(true);
    expect((await s2.get(idOf('a')))!.bytes.equals(bytesFor(1, 10 * KiB))).toBe(true);
  });

  for (const clean of [true, false]) {
    it(`torn bytes past the tail are cut on reopen (${clean ? 'after a clean close' : 'after a crash'})`, async () => {
      const dir = dirs.make();
      const faulty = new FaultyFileLayer(nodeFileLayer(), 12);
      const s = await make(dir, faulty);
      await s.put(idOf('a'), bytesFor(1, 10 * KiB));
      const st = (await s.stat(idOf('a')))!;
      const path = `${dir}/extent-${String(st.extentNo).padStart(10, '0')}.twx`;
      if (clean) await s.close();
      else faulty.crash();
      if (!clean) await s.close();
      stores.splice(stores.indexOf(s), 1);
      // A torn copy of record 'a' (its first 6 KiB) right after it, as a crash mid-write leaves.
      const { openSync, readSync, writeSync, closeSync } = await import('node:fs');
      const fd = openSync(path, 'r+');
      const torn = Buffer.alloc(6 * KiB);
      readSync(fd, torn, 0, torn.length, st.offset);
      writeSync(fd, torn, 0, torn.length, 12 * KiB);
      closeSync(fd);
      const reports: CorruptionReport[] = [];
      const s2 = await make(dir, undefined, { onCorrupt: (r) => reports.push(r) });
      expect(s2.extents()[0]!.tailBytes).toBe(12 * KiB);
      const check = Buffer.alloc(6 * KiB, 1);
      const fd2 = openSync(path, 'r');
      readSync(fd2, check, 0, check.length, 12 * KiB);
      closeSync(fd2);
      expect(check.equals(Buffer.alloc(6 * KiB))).toBe(true);
      await s2.put(idOf('c'), bytesFor(3, 1000));
      expect((await s2.stat(idOf('c')))!.offset).toBe(12 * KiB);
      expect((await s2.get(idOf('a')))!.bytes.equals(bytesFor(1, 10 * KiB))).toBe(true);
    });
  }
});
