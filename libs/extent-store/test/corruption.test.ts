import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { isTwError } from '@tw/errors';
import { extentFileName, FaultyFileLayer, nodeFileLayer, openExtentStore, type CorruptionReport, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

async function make(dir: string, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 128 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 }, ...extra });
  stores.push(s);
  return s;
}

describe('corruption outside the read path', () => {
  it('compaction reports a corrupt live record and drops it from the index instead of copying it', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 1);
    const reports: CorruptionReport[] = [];
    const s = await make(dir, { files: faulty, onCorrupt: (r) => reports.push(r) });
    for (let i = 0; i < 12; i++) await s.put(idOf(`k${i}`), bytesFor(i, 20 * KiB));
    for (let i = 0; i < 12; i += 2) await s.delete(idOf(`k${i}`));
    const bad = (await s.stat(idOf('k1')))!;
    await faulty.flipBitOnDisk(join(dir, extentFileName(bad.extentNo)), bad.offset + 10_000, 2);
    await s.compact({ garbageRatioMin: 0.1 });
    expect(reports.some((r) => r.during === 'compaction' && r.id?.toString() === 'k1')).toBe(true);
    expect(await s.get(idOf('k1'))).toBeUndefined();
    for (let i = 3; i < 12; i += 2) expect((await s.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, 20 * KiB))).toBe(true);
  });

  it('an index rebuild skips a corrupt record, reports it, and keeps the records after it', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 2);
    const s = await make(dir, { files: faulty });
    for (let i = 0; i < 5; i++) await s.put(idOf(`k${i}`), bytesFor(i, 10 * KiB));
    const bad = (await s.stat(idOf('k2')))!;
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    await faulty.flipBitOnDisk(join(dir, extentFileName(bad.extentNo)), bad.offset + 5000, 7);
    rmSync(join(dir, 'index'), { recursive: true, force: true });
    const reports: CorruptionReport[] = [];
    const s2 = await make(dir, { onCorrupt: (r) => reports.push(r) });
    expect(reports.map((r) => [r.during, r.offset])).toEqual([['rebuild', bad.offset]]);
    expect(await s2.get(idOf('k2'))).toBeUndefined();
    for (const i of [0, 1, 3, 4]) expect((await s2.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, 10 * KiB))).toBe(true);
    // The damaged record is not cut as a torn tail: records after it stand and new ones follow them.
    await s2.put(idOf('new'), bytesFor(9, 1000));
    expect((await s2.stat(idOf('new')))!.offset).toBeGreaterThan((await s2.stat(idOf('k4')))!.offset);
  });

  it('a missing extent file is reported and reads of its fragments fail as corrupt', async () => {
    const dir = dirs.make();
    let s = await make(dir);
    for (let i = 0; i < 12; i++) await s.put(idOf(`k${i}`), bytesFor(i, 20 * KiB));
    const first = (await s.stat(idOf('k0')))!.extentNo;
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    rmSync(join(dir, extentFileName(first)));
    const reports: CorruptionReport[] = [];
    s = await make(dir, { onCorrupt: (r) => reports.push(r) });
    expect(reports.length).toBeGreaterThan(0);
    const err = await s.get(idOf('k0')).catch((e: unknown) => e);
    expect(isTwError(err, 'TW_EXTENT_CORRUPT')).toBe(true);
    expect((await s.get(idOf('k11')))!.bytes.equals(bytesFor(11, 20 * KiB))).toBe(true);
  });
});

describe('background compaction and aborts', () => {
  it('compacts on its own when compaction.intervalMs is set', async () => {
    const s = await make(dirs.make(), { compaction: { intervalMs: 20, garbageRatioMin: 0.3 } });
    for (let i = 0; i < 20; i++) await s.put(idOf(`k${i}`), bytesFor(i, 20 * KiB));
    for (let i = 0; i < 20; i++) if (i % 5) await s.delete(idOf(`k${i}`));
    const before = s.capacity().garbageBytes;
    for (let n = 0; n < 200 && s.capacity().garbageBytes >= before; n++) await new Promise((r) => setTimeout(r, 10));
    expect(s.capacity().garbageBytes).toBeLessThan(before);
    for (let i = 0; i < 20; i += 5) expect((await s.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, 20 * KiB))).toBe(true);
  });

  it('a put waiting for admission honours its AbortSignal', async () => {
    const s = await make(dirs.make(), { appendInflightBytesMax: 64 * KiB });
    const first = s.put(idOf('first'), Buffer.alloc(60 * KiB, 1)); // takes the whole budget
    const ac = new AbortController();
    const waiting = s.put(idOf('late'), Buffer.alloc(10 * KiB), { signal: ac.signal });
    ac.abort();
    const err = await waiting.catch((e: unknown) => e);
    await first;
    expect(isTwError(err, 'TW_EXTENT_ABORTED')).toBe(true);
    expect(await s.get(idOf('late'))).toBeUndefined();
    expect((await s.get(idOf('first')))!.bytes.byteLength).toBe(60 * KiB);
  });
});
