import { afterEach, describe, expect, it, vi } from 'vitest';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

const realSetTimeout = globalThis.setTimeout;
/** Resolves with 'settled' when p settles, or 'pending' after a real-time deadline (a hang guard). */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<'settled' | 'pending'> {
  return Promise.race([p.then(() => 'settled' as const), new Promise<'pending'>((r) => realSetTimeout(() => r('pending'), ms))]);
}

describe('group commit pacing', () => {
  it('syncs a put on an idle store at once; a put right after waits for the next interval slot', async () => {
    const files = new FaultyFileLayer(nodeFileLayer(), 1);
    let extentSyncs = 0;
    // Counts syncs of extent files; never injects a fault.
    files.faults.eioOnSync = (path) => {
      if (/extent/.test(path)) extentSyncs++;
      return false;
    };
    const s = await openExtentStore({ dir: dirs.make(), files, extentSizeBytes: 256 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1000 } });
    stores.push(s);
    // The store's pacing clock and timer are faked: nothing advances them unless the test does.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const before = extentSyncs;
    const first = s.put(idOf('a'), bytesFor(1, 10 * KiB));
    expect(await settledWithin(first, 30_000)).toBe('settled');
    expect(extentSyncs - before).toBe(1);
    const second = s.put(idOf('b'), bytesFor(2, 10 * KiB));
    expect(await settledWithin(second, 500)).toBe('pending');
    expect(extentSyncs - before).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await settledWithin(second, 30_000)).toBe('settled');
    expect(extentSyncs - before).toBe(2);
    vi.useRealTimers();
    expect((await s.get(idOf('b')))?.bytes.equals(bytesFor(2, 10 * KiB))).toBe(true);
  });
});
