import { afterEach, expect, it } from 'vitest';
import { openExtentStore, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

async function make(dir: string): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 256 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 } });
  stores.push(s);
  return s;
}

it('lastSeq bounds every seq handed out, grows with puts and deletes, and survives reopen and compaction', async () => {
  const dir = dirs.make();
  let s = await make(dir);
  expect(s.lastSeq).toBe(0);
  const seqs: number[] = [];
  for (let i = 0; i < 20; i++) seqs.push((await s.put(idOf(`f-${i}`), bytesFor(i, 5 * KiB))).seq);
  expect(s.lastSeq).toBe(Math.max(...seqs));
  for (let i = 0; i < 15; i++) await s.delete(idOf(`f-${i}`));
  const afterDeletes = s.lastSeq;
  expect(afterDeletes).toBe(Math.max(...seqs) + 15);
  await s.compact({ garbageRatioMin: 0.01 });
  expect(s.lastSeq).toBe(afterDeletes);
  await s.close();
  stores.splice(stores.indexOf(s), 1);
  s = await make(dir);
  expect(s.lastSeq).toBeGreaterThanOrEqual(afterDeletes);
  const listed = await s.list({ limit: 100 });
  for (const e of listed.entries) expect(e.seq).toBeLessThanOrEqual(s.lastSeq);
  expect((await s.put(idOf("f-99"), bytesFor(99, KiB))).seq).toBeGreaterThan(afterDeletes);
});
