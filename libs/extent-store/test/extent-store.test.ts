import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { isTwError } from '@tw/errors';
import { openExtentStore, type CorruptionReport, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, KiB, MiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const open: ExtentStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  dirs.cleanup();
});

async function make(dir: string, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 1 * MiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 }, ...extra });
  open.push(s);
  return s;
}

async function reopen(s: ExtentStore, extra: Partial<Parameters<typeof openExtentStore>[0]> = {}): Promise<ExtentStore> {
  await s.close();
  open.splice(open.indexOf(s), 1);
  return make(s.dir, extra);
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isTwError(err)) return err.code;
    throw err;
  }
  return 'no error';
}

describe('ExtentStore basics', () => {
  it('puts, gets, stats, lists and deletes', async () => {
    const s = await make(dirs.make());
    const a = bytesFor(1, 10_000);
    const b = bytesFor(2, 1);
    const r1 = await s.put(idOf('ns/a'), a);
    const r2 = await s.put(idOf('ns/b'), [b.subarray(0, 0), b]);
    expect(r2.seq).toBeGreaterThan(r1.seq);
    expect((await s.get(idOf('ns/a')))!.bytes.equals(a)).toBe(true);
    expect((await s.get(idOf('ns/b')))!.bytes.equals(b)).toBe(true);
    expect(await s.get(idOf('ns/c'))).toBeUndefined();
    const st = await s.stat(idOf('ns/a'));
    expect(st).toMatchObject({ sizeBytes: 10_000, seq: r1.seq });
    await s.put(idOf('other'), bytesFor(3, 5));
    const page = await s.list({ prefix: idOf('ns/') });
    expect(page.entries.map((e) => e.id.toString())).toEqual(['ns/a', 'ns/b']);
    expect(page.next).toBeUndefined();
    expect(await s.delete(idOf('ns/a'))).toBe(true);
    expect(await s.delete(idOf('ns/a'))).toBe(false);
    expect(await s.get(idOf('ns/a'))).toBeUndefined();
    expect(s.capacity().fragmentCount).toBe(2);
  });

  it('reads into a caller-supplied buffer, refusing one too small', async () => {
    const s = await make(dirs.make());
    const a = bytesFor(4, 50_000);
    await s.put(idOf('x'), a);
    const into = Buffer.alloc(60_000, 0xee);
    const r = await s.get(idOf('x'), { into });
    expect(r!.bytes.buffer).toBe(into.buffer);
    expect(r!.bytes.equals(a)).toBe(true);
    expect(into[50_000]).toBe(0xee);
    expect(await code(s.get(idOf('x'), { into: Buffer.alloc(10) }))).toBe('TW_EXTENT_BUFFER_TOO_SMALL');
  });

  it('paginates list with a bounded page size', async () => {
    const s = await make(dirs.make());
    for (let i = 0; i < 25; i++) await s.put(idOf(`k${String(i).padStart(2, '0')}`), bytesFor(i, 10));
    const seen: string[] = [];
    let after: Buffer | undefined;
    for (let page = 0; page < 10; page++) {
      const p = await s.list({ limit: 10, ...(after ? { after } : {}) });
      seen.push(...p.entries.map((e) => e.id.toString()));
      if (p.next === undefined) break;
      after = p.next;
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(await code(s.list({ limit: 5000 }))).toBe('TW_EXTENT_ARGUMENT_INVALID');
  });

  it('validates ids and sizes with coded errors', async () => {
    const s = await make(dirs.make());
    expect(await code(s.put(new Uint8Array(0), Buffer.alloc(1)))).toBe('TW_EXTENT_ID_INVALID');
    expect(await code(s.put(Buffer.alloc(1025, 1), Buffer.alloc(1)))).toBe('TW_EXTENT_ID_INVALID');
    expect(await code(s.put(idOf('big'), Buffer.alloc(2 * MiB)))).toBe('TW_EXTENT_PAYLOAD_TOO_LARGE');
    await expect(openExtentStore({ dir: dirs.make(), extentSizeBytes: 1000 })).rejects.toMatchObject({ code: 'TW_EXTENT_ARGUMENT_INVALID' });
  });

  it('overwrites keep the latest version and account garbage', async () => {
    const s = await make(dirs.make());
    await s.put(idOf('k'), bytesFor(1, 100 * KiB));
    const v2 = bytesFor(2, 100 * KiB);
    await s.put(idOf('k'), v2);
    expect((await s.get(idOf('k')))!.bytes.equals(v2)).toBe(true);
    await s.indexed(); // capacity() counts a put once its index batch is in
    const c = s.capacity();
    expect(c.liveBytes).toBe(104 * KiB);
    expect(c.garbageBytes).toBe(104 * KiB);
  });

  it('survives a clean reopen and rolls over into new extents', async () => {
    let s = await make(dirs.make());
    const items = Array.from({ length: 30 }, (_, i) => ({ id: idOf(`f${i}`), bytes: bytesFor(i, 100 * KiB) }));
    await Promise.all(items.map((x) => s.put(x.id, x.bytes)));
    expect(s.capacity().extentCount).toBeGreaterThan(2);
    s = await reopen(s);
    for (const x of items) expect((await s.get(x.id))!.bytes.equals(x.bytes)).toBe(true);
    await s.put(idOf('after'), bytesFor(99, 10));
    s = await reopen(s);
    expect((await s.get(idOf('after')))!.bytes.equals(bytesFor(99, 10))).toBe(true);
  });

  for (const mode of ['always', 'never'] as const) {
    it(`fsync policy ${mode} acknowledges puts`, async () => {
      let s = await make(dirs.make(), { fsync: { mode } });
      await Promise.all(Array.from({ length: 20 }, (_, i) => s.put(idOf(`m${i}`), bytesFor(i, 3000))));
      s = await reopen(s, { fsync: { mode } });
      for (let i = 0; i < 20; i++) expect((await s.get(idOf(`m${i}`)))!.bytes.equals(bytesFor(i, 3000))).toBe(true);
    });
  }

  it('refuses a second opener of the same folder', async () => {
    const dir = dirs.make();
    await make(dir);
    await expect(openExtentStore({ dir, extentSizeBytes: 1 * MiB, reserveBytes: 0 })).rejects.toMatchObject({ code: 'TW_EXTENT_LOCKED' });
  });

  it('reports a corrupt record and never serves it', async () => {
    const reports: CorruptionReport[] = [];
    const dir = dirs.make();
    const s = await make(dir, { onCorrupt: (r) => reports.push(r) });
    await s.put(idOf('c'), bytesFor(5, 20_000));
    const st = (await s.stat(idOf('c')))!;
    const { openSync, writeSync, closeSync, readSync } = await import('node:fs');
    const name = readdirSync(dir).find((n) => n.startsWith('extent-'))!;
    const fd = openSync(`${dir}/${name}`, 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, st.offset + 5000);
    one[0] = one[0]! ^ 0x10;
    writeSync(fd, one, 0, 1, st.offset + 5000);
    closeSync(fd);
    const err = await s.get(idOf('c')).catch((e: unknown) => e);
    expect(isTwError(err, 'TW_EXTENT_CORRUPT')).toBe(true);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ offset: st.offset, reason: 'trailing checksum mismatch', during: 'get' });
  });

  it('refuses writes with TW_EXTENT_FULL at capacity and still deletes', async () => {
    const s = await make(dirs.make(), { capacityBytes: 3 * MiB });
    let stored = 0;
    let full = '';
    for (let i = 0; i < 100 && full === ''; i++) {
      full = await code(s.put(idOf(`x${i}`), bytesFor(i, 200 * KiB)));
      if (full === 'no error') {
        stored++;
        full = '';
      }
    }
    expect(full).toBe('TW_EXTENT_FULL');
    expect(stored).toBeGreaterThan(5);
    expect(s.capacity().freeBytes).toBeLessThan(204 * KiB);
    expect(await s.delete(idOf('x0'))).toBe(true);
  });
});
