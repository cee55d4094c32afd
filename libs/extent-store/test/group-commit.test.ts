import { afterEach, describe, expect, it, vi } from 'vitest';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, type ExtentStore, type FileLayer } from '../src/index.js';
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

/** nodeFileLayer whose extent writes and syncs are counted and whose syncs can be held at a gate (a slow disk). */
function gatedLayer(gate: { hold: Promise<void> | undefined; syncs: number; writes?: number }): FileLayer {
  const inner = nodeFileLayer();
  return {
    ...inner,
    async open(path, mode) {
      const h = await inner.open(path, mode);
      if (!/extent-/.test(path)) return h;
      return new Proxy(h, {
        get(target, key, receiver) {
          if (key === 'writev') {
            return async (...args: Parameters<typeof target.writev>) => {
              await target.writev(...args);
              gate.writes = (gate.writes ?? 0) + 1;
            };
          }
          if (key === 'datasync') {
            return async () => {
              gate.syncs++;
              await gate.hold;
              return target.datasync();
            };
          }
          const v: unknown = Reflect.get(target, key, receiver);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
}

describe('group commit with intervalMs 0 (syncs back to back)', () => {
  it('syncs each put as soon as no sync runs: puts one at a time never wait for a timer', async () => {
    const gate = { hold: undefined as Promise<void> | undefined, syncs: 0 };
    const s = await openExtentStore({ dir: dirs.make(), files: gatedLayer(gate), extentSizeBytes: 256 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 0 } });
    stores.push(s);
    // Timers and the pacing clock are frozen: a put that waited for a timer would never settle.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const before = gate.syncs;
    for (let i = 0; i < 5; i++) {
      expect(await settledWithin(s.put(idOf(`p${i}`), bytesFor(i, 4 * KiB)), 30_000)).toBe('settled');
    }
    expect(gate.syncs - before).toBe(5);
  });

  it('puts that arrive while a sync runs share the next one', async () => {
    const gate = { hold: undefined as Promise<void> | undefined, syncs: 0, writes: 0 };
    const s = await openExtentStore({ dir: dirs.make(), files: gatedLayer(gate), extentSizeBytes: 256 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 0 } });
    stores.push(s);
    let release!: () => void;
    gate.hold = new Promise<void>((r) => (release = r));
    const before = gate.syncs;
    const first = s.put(idOf('first'), bytesFor(100, 4 * KiB));
    // Wait (bounded) until the first put's sync is held at the gate.
    for (let i = 0; i < 1000 && gate.syncs === before; i++) await new Promise((r) => realSetTimeout(r, 1));
    expect(gate.syncs - before).toBe(1);
    const written = gate.writes;
    const rest = Array.from({ length: 8 }, (_, i) => s.put(idOf(`r${i}`), bytesFor(200 + i, 4 * KiB)));
    // Wait (bounded) until all eight are written: each is then covered by the next sync.
    for (let i = 0; i < 10_000 && gate.writes < written + 8; i++) await new Promise((r) => realSetTimeout(r, 1));
    expect(gate.writes - written).toBe(8);
    expect(await settledWithin(Promise.all(rest), 50)).toBe('pending');
    gate.hold = undefined;
    release();
    expect(await settledWithin(first, 30_000)).toBe('settled');
    expect(await settledWithin(Promise.all(rest), 30_000)).toBe('settled');
    // One sync for the first put, one shared by the eight that came while it ran.
    expect(gate.syncs - before).toBe(2);
    for (let i = 0; i < 8; i++) expect((await s.get(idOf(`r${i}`)))?.bytes.equals(bytesFor(200 + i, 4 * KiB))).toBe(true);
  });
});
