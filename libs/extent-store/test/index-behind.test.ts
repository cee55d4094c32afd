import { afterEach, describe, expect, it } from 'vitest';
import { openExtentStore, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

/** Puts are acknowledged once durable; their index batch follows (ExtentStore #runFlush). */
const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  dirs.cleanup();
});

/** A gate the index batches wait at until opened (or fail at, once `fail` is set). */
function gate() {
  let open!: () => void;
  let opened = new Promise<void>((r) => (open = r));
  const g = {
    fail: undefined as Error | undefined,
    waiting: 0,
    open: () => open(),
    close: () => {
      opened = new Promise<void>((r) => (open = r));
    },
    beforeBatch: async () => {
      g.waiting++;
      await opened;
      g.waiting--;
      if (g.fail !== undefined) throw g.fail;
    },
  };
  return g;
}

async function make(dir: string, hooks?: { beforeBatch?: () => Promise<void> }): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 64 * 1024 * 1024, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 }, ...(hooks ? { indexHooks: hooks } : {}) });
  stores.push(s);
  return s;
}

describe('puts acknowledged before their index batch', () => {
  it('are read, stat-ed and listed while the batch waits; capacity counts them once it is in', async () => {
    const g = gate();
    const s = await make(dirs.make(), g);
    await s.put(idOf('a'), bytesFor(1, 10 * KiB));
    await s.put(idOf('b'), bytesFor(2, 20 * KiB));
    expect(g.waiting).toBeGreaterThan(0); // acknowledged, index batch not applied
    expect((await s.get(idOf('a')))!.bytes.equals(bytesFor(1, 10 * KiB))).toBe(true);
    expect((await s.stat(idOf('b')))!.sizeBytes).toBe(20 * KiB);
    // A newer put of the same id wins over the older unindexed one.
    await s.put(idOf('a'), bytesFor(3, 5 * KiB));
    expect((await s.get(idOf('a')))!.bytes.equals(bytesFor(3, 5 * KiB))).toBe(true);
    expect(s.capacity().fragmentCount).toBe(0);
    // list() waits for the batches queued before it.
    let listed: string[] | undefined;
    const listing = s.list().then((p) => (listed = p.entries.map((e) => e.id.toString())));
    await new Promise((r) => setTimeout(r, 20));
    expect(listed).toBeUndefined();
    g.open();
    await listing;
    expect(listed).toEqual(['a', 'b']);
    await s.indexed();
    expect(s.capacity().fragmentCount).toBe(2);
    expect((await s.get(idOf('a')))!.bytes.equals(bytesFor(3, 5 * KiB))).toBe(true);
  });

  it('a delete answers once its batch is in, and the id reads as gone after it', async () => {
    const g = gate();
    const s = await make(dirs.make(), g);
    await s.put(idOf('x'), bytesFor(1, 8 * KiB));
    let deleted: boolean | undefined;
    const del = s.delete(idOf('x')).then((d) => (deleted = d));
    await new Promise((r) => setTimeout(r, 20));
    expect(deleted).toBeUndefined(); // waits for the index
    expect(await s.get(idOf('x'))).toBeDefined(); // not deleted until acknowledged
    g.open();
    await del;
    expect(deleted).toBe(true);
    expect(await s.get(idOf('x'))).toBeUndefined();
  });

  it('when an index batch fails: acknowledged puts stay readable, later writes are refused, a reopen re-indexes', async () => {
    const dir = dirs.make();
    const g = gate();
    let s = await make(dir, g);
    await s.put(idOf('kept'), bytesFor(1, 12 * KiB));
    await s.put(idOf('victim'), bytesFor(3, 6 * KiB));
    g.fail = new Error('EIO: index write failed');
    g.open();
    await s.indexed();
    expect((await s.get(idOf('kept')))!.bytes.equals(bytesFor(1, 12 * KiB))).toBe(true);
    expect(s.writeFailure?.code).toBe('TW_EXTENT_IO');
    await expect(s.put(idOf('later'), bytesFor(2, 4 * KiB))).rejects.toMatchObject({ code: 'TW_EXTENT_IO' });
    await expect(s.delete(idOf('victim'))).rejects.toMatchObject({ code: 'TW_EXTENT_IO' });
    expect((await s.get(idOf('victim')))!.bytes.equals(bytesFor(3, 6 * KiB))).toBe(true);
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    s = await make(dir);
    expect(s.writeFailure).toBeUndefined();
    expect((await s.get(idOf('kept')))!.bytes.equals(bytesFor(1, 12 * KiB))).toBe(true);
    // Refused writes were durable but never acknowledged: each may have happened or not, whole.
    const later = await s.get(idOf('later'));
    expect(later === undefined || later.bytes.equals(bytesFor(2, 4 * KiB))).toBe(true);
    const victim = await s.get(idOf('victim'));
    expect(victim === undefined || victim.bytes.equals(bytesFor(3, 6 * KiB))).toBe(true);
  });
});
