import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { isTwError } from '@tw/errors';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, type CorruptionReport, type ExtentStore, type ExtentStoreOptions, type PutStream } from '../src/index.js';
import { bytesFor, idOf, KiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

async function make(dir: string, extra: Partial<ExtentStoreOptions> = {}): Promise<ExtentStore> {
  const s = await openExtentStore({ dir, extentSizeBytes: 1024 * KiB, reserveBytes: 0, fsync: { mode: 'group', intervalMs: 1 }, ...extra });
  stores.push(s);
  return s;
}

async function closeAndForget(s: ExtentStore): Promise<void> {
  await s.close();
  stores.splice(stores.indexOf(s), 1);
}

/** Writes `bytes[from, to)` into the stream in pieces of `pieceBytes`. */
function feed(stream: PutStream, bytes: Buffer, from: number, to: number, pieceBytes: number): void {
  for (let off = from; off < to; off += pieceBytes) stream.write(bytes.subarray(off, Math.min(to, off + pieceBytes)), off);
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Whether `p` is still pending after the store had many turns to settle it (not a timing assertion: the promise may only settle after an event that has not happened). */
async function stillPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 50 && !settled; i++) await new Promise((r) => setTimeout(r, 2));
  return !settled;
}

describe('streaming put (beginPut)', () => {
  it('stores a payload given in pieces, byte-identical to a plain put, across reopen and index rebuild', async () => {
    const dir = dirs.make();
    const s = await make(dir);
    const sizes = [0, 1, 4095, 4096, 100 * KiB + 3, 300 * KiB];
    for (const [i, size] of sizes.entries()) {
      const bytes = bytesFor(i, size);
      const stream = await s.beginPut(idOf(`s${i}`), size);
      feed(stream, bytes, 0, size, 1 + ((i * 7919) % (64 * KiB)));
      expect(stream.receivedBytes).toBe(size);
      const { seq } = await stream.finish();
      expect((await s.stat(idOf(`s${i}`)))!.seq).toBe(seq);
      expect((await s.get(idOf(`s${i}`)))!.bytes.equals(bytes)).toBe(true);
    }
    await s.put(idOf('plain'), bytesFor(99, 5000));
    await closeAndForget(s);
    const s2 = await make(dir, { rebuildIndex: true });
    for (const [i, size] of sizes.entries()) expect((await s2.get(idOf(`s${i}`)))!.bytes.equals(bytesFor(i, size))).toBe(true);
    expect((await s2.get(idOf('plain')))!.bytes.equals(bytesFor(99, 5000))).toBe(true);
  });

  it('refuses pieces out of order or past the length, and a finish with bytes missing (which abandons)', async () => {
    const s = await make(dirs.make());
    const bytes = bytesFor(1, 20 * KiB);
    const stream = await s.beginPut(idOf('x'), bytes.length);
    stream.write(bytes.subarray(0, 1000), 0);
    expect(() => stream.write(bytes.subarray(2000, 3000), 2000)).toThrow(expect.objectContaining({ code: 'TW_EXTENT_ARGUMENT_INVALID' }));
    expect(() => stream.write(Buffer.alloc(30 * KiB), 1000)).toThrow(expect.objectContaining({ code: 'TW_EXTENT_ARGUMENT_INVALID' }));
    expect(isTwError(await errorOf(stream.finish()), 'TW_EXTENT_ARGUMENT_INVALID')).toBe(true);
    expect(stream.abandoned).toBe(true);
    expect(() => stream.write(bytes.subarray(1000, 2000), 1000)).toThrow(expect.objectContaining({ code: 'TW_EXTENT_ABORTED' }));
    expect(await s.get(idOf('x'))).toBeUndefined();
    await expect(s.beginPut(idOf('y'), s.payloadBytesMax + 1)).rejects.toMatchObject({ code: 'TW_EXTENT_PAYLOAD_TOO_LARGE' });
    // The store goes on.
    await s.put(idOf('z'), bytes);
    expect((await s.get(idOf('z')))!.bytes.equals(bytes)).toBe(true);
  });

  it('holds later puts back while open, and releases them when abandoned; the abandoned record never shows', async () => {
    const dir = dirs.make();
    const s = await make(dir);
    await s.put(idOf('old'), bytesFor(7, 10 * KiB));
    const a = bytesFor(1, 200 * KiB);
    const stream = await s.beginPut(idOf('old'), a.length); // would replace 'old'
    feed(stream, a, 0, 100 * KiB, 16 * KiB);
    const later = s.put(idOf('later'), bytesFor(2, 50 * KiB));
    expect(await stillPending(later)).toBe(true);
    await stream.abandon(new Error('connection lost'));
    await later;
    await expect(stream.finish()).rejects.toMatchObject({ code: 'TW_EXTENT_ABORTED' });
    expect((await s.get(idOf('old')))!.bytes.equals(bytesFor(7, 10 * KiB))).toBe(true);
    await s.put(idOf('after'), bytesFor(3, 30 * KiB));
    // Clean reopen, then a full rebuild: the abandoned record (valid header, no trailer, in the
    // middle of the extent) is skipped by its length; the records after it stand.
    await closeAndForget(s);
    const s2 = await make(dir);
    expect((await s2.get(idOf('old')))!.bytes.equals(bytesFor(7, 10 * KiB))).toBe(true);
    await closeAndForget(s2);
    const reports: CorruptionReport[] = [];
    const s3 = await make(dir, { rebuildIndex: true, onCorrupt: (r) => reports.push(r) });
    expect((await s3.get(idOf('old')))!.bytes.equals(bytesFor(7, 10 * KiB))).toBe(true);
    expect((await s3.get(idOf('later')))!.bytes.equals(bytesFor(2, 50 * KiB))).toBe(true);
    expect((await s3.get(idOf('after')))!.bytes.equals(bytesFor(3, 30 * KiB))).toBe(true);
    expect(reports.length).toBe(1);
    await s3.put(idOf('new'), bytesFor(4, 1000));
    expect((await s3.stat(idOf('new')))!.offset).toBeGreaterThan((await s3.stat(idOf('after')))!.offset);
  });

  it('abandons a stream that stalls (putStreamIdleMs), so later puts are acknowledged', async () => {
    const s = await make(dirs.make(), { putStreamIdleMs: 30 });
    const stream = await s.beginPut(idOf('stall'), 50 * KiB);
    stream.write(bytesFor(1, 10 * KiB), 0);
    await s.put(idOf('b'), bytesFor(2, 10 * KiB)); // resolves only once the stall is abandoned
    expect(stream.abandoned).toBe(true);
    await expect(stream.finish()).rejects.toMatchObject({ code: 'TW_EXTENT_ABORTED' });
    expect(await s.get(idOf('stall'))).toBeUndefined();
  });

  it('abandons a stream that trickles past putStreamLifetimeMs, however steadily its pieces come, so later puts are acknowledged', async () => {
    const s = await make(dirs.make(), { putStreamIdleMs: 10_000, putStreamLifetimeMs: 150 });
    const stream = await s.beginPut(idOf('trickle'), 50 * KiB);
    // One piece every 20 ms: never idle for long, never finished.
    let at = 0;
    const feeder = setInterval(() => {
      if (stream.abandoned || at >= 40 * KiB) return;
      stream.write(bytesFor(at, 1 * KiB), at);
      at += 1 * KiB;
    }, 20);
    try {
      await s.put(idOf('b'), bytesFor(2, 10 * KiB)); // resolves only once the stream is abandoned
    } finally {
      clearInterval(feeder);
    }
    expect(stream.abandoned).toBe(true);
    expect(at).toBeLessThan(40 * KiB);
    await expect(stream.finish()).rejects.toMatchObject({ code: 'TW_EXTENT_ABORTED' });
    expect(await s.get(idOf('trickle'))).toBeUndefined();
    expect((await s.get(idOf('b')))?.bytes.equals(bytesFor(2, 10 * KiB))).toBe(true);
    await expect(make(dirs.make(), { putStreamLifetimeMs: 0 })).rejects.toMatchObject({ code: 'TW_EXTENT_ARGUMENT_INVALID' });
  });

  it('a stream that finishes within its lifetime is not abandoned later', async () => {
    const s = await make(dirs.make(), { putStreamLifetimeMs: 100 });
    const bytes = bytesFor(5, 20 * KiB);
    const stream = await s.beginPut(idOf('quick'), bytes.length);
    stream.write(bytes, 0);
    await stream.finish();
    await new Promise((r) => setTimeout(r, 150));
    expect(stream.abandoned).toBe(false);
    expect((await s.get(idOf('quick')))?.bytes.equals(bytes)).toBe(true);
  });

  it('a close abandons open streams instead of waiting for them', async () => {
    const dir = dirs.make();
    const s = await make(dir);
    const stream = await s.beginPut(idOf('open'), 50 * KiB);
    stream.write(bytesFor(1, 10 * KiB), 0);
    await closeAndForget(s);
    expect(stream.abandoned).toBe(true);
    const s2 = await make(dir);
    expect(await s2.get(idOf('open'))).toBeUndefined();
  });

  it('a write error fails the finish (not acknowledged, not visible); puts after it go on', async () => {
    const faulty = new FaultyFileLayer(nodeFileLayer(), 3);
    const s = await make(dirs.make(), { files: faulty });
    const bytes = bytesFor(1, 80 * KiB);
    const stream = await s.beginPut(idOf('eio'), bytes.length);
    faulty.faults.eioOnWrite = () => true;
    feed(stream, bytes, 0, bytes.length, 32 * KiB);
    const err = await errorOf(stream.finish());
    expect(isTwError(err, 'TW_EXTENT_IO')).toBe(true);
    faulty.faults.eioOnWrite = undefined;
    expect(await s.get(idOf('eio'))).toBeUndefined();
    await s.put(idOf('next'), bytes);
    expect((await s.get(idOf('next')))!.bytes.equals(bytes)).toBe(true);
  });

  for (const rebuild of [false, true]) {
    it(`crash mid-stream with a complete record after it, then ${rebuild ? 'an index rebuild: the torn record is skipped by its length, the one after it kept' : 'recovery: neither shows, the store goes on'}`, async () => {
      const dir = dirs.make();
      const faulty = new FaultyFileLayer(nodeFileLayer(), 5);
      const s = await make(dir, { files: faulty });
      await s.put(idOf('acked'), bytesFor(1, 30 * KiB));
      const a = bytesFor(2, 256 * KiB);
      const stream = await s.beginPut(idOf('torn'), a.length);
      feed(stream, a, 0, 100 * KiB, 20 * KiB);
      // A put admitted after the stream: written completely, but not acknowledged (held back).
      const writesBefore = faulty.writes;
      const held = s.put(idOf('behind'), bytesFor(3, 40 * KiB));
      held.catch(() => undefined);
      for (let i = 0; i < 10_000 && faulty.writes === writesBefore; i++) await nextTurn();
      expect(await stillPending(held)).toBe(true);
      // SIGKILL: the page cache keeps what was written, nothing more happens.
      faulty.crash();
      await closeAndForget(s);
      const reports: CorruptionReport[] = [];
      const s2 = await make(dir, { rebuildIndex: rebuild, onCorrupt: (r) => reports.push(r) });
      expect((await s2.get(idOf('acked')))!.bytes.equals(bytesFor(1, 30 * KiB))).toBe(true);
      expect(await s2.get(idOf('torn'))).toBeUndefined();
      if (rebuild) {
        // Not cut off as a torn tail: the complete record after the torn one is found, intact.
        expect((await s2.get(idOf('behind')))!.bytes.equals(bytesFor(3, 40 * KiB))).toBe(true);
        expect(reports.length).toBe(1);
      } else {
        // close() after the simulated crash still wrote the index watermark past both records
        // (the index is not behind the faulty layer): 'behind' failed its sync, so it is out.
        // The real SIGKILL case, where recovery scans across the torn record, is crash-process.test.ts.
        expect(await s2.get(idOf('behind'))).toBeUndefined();
      }
      await s2.put(idOf('new'), bytesFor(4, 1000));
      expect((await s2.stat(idOf('new')))!.offset).toBeGreaterThan((await s2.stat(idOf(rebuild ? 'behind' : 'acked')))!.offset);
      expect((await s2.get(idOf('new')))!.bytes.equals(bytesFor(4, 1000))).toBe(true);
    });
  }

  it('crash mid-stream at the tail: the partial record is cut, acknowledged ones survive, puts go on', async () => {
    for (let seed = 1; seed <= 4; seed++) {
      const dir = dirs.make();
      const faulty = new FaultyFileLayer(nodeFileLayer(), seed);
      const s = await make(dir, { files: faulty });
      for (let i = 0; i < 3; i++) await s.put(idOf(`k${i}`), bytesFor(i, 20 * KiB));
      const a = bytesFor(9, 300 * KiB);
      const stream = await s.beginPut(idOf('torn'), a.length);
      faulty.faults.crashOnWrite = 1 + faulty.randomInt(6); // a torn piece (or the header), then dead
      feed(stream, a, 0, a.length, 32 * KiB);
      expect(isTwError(await errorOf(stream.finish()))).toBe(true);
      expect(faulty.crashed).toBe(true);
      await closeAndForget(s);
      const s2 = await make(dir);
      for (let i = 0; i < 3; i++) expect((await s2.get(idOf(`k${i}`)))!.bytes.equals(bytesFor(i, 20 * KiB))).toBe(true);
      expect(await s2.get(idOf('torn'))).toBeUndefined();
      await s2.put(idOf('again'), a);
      expect((await s2.get(idOf('again')))!.bytes.equals(a)).toBe(true);
      await closeAndForget(s2);
      rmSync(join(dir, 'index'), { recursive: true, force: true });
      const s3 = await make(dir);
      expect((await s3.get(idOf('again')))!.bytes.equals(a)).toBe(true);
      expect(await s3.get(idOf('torn'))).toBeUndefined();
      await closeAndForget(s3);
    }
  });

  it('interleaved streams and puts: each acknowledged fragment reads back; abandoned ones never do (seeded)', async () => {
    const dir = dirs.make();
    const s = await make(dir, { extentSizeBytes: 512 * KiB });
    let rand = 12345;
    const next = (n: number): number => {
      rand = (Math.imul(rand, 1103515245) + 12345) >>> 0;
      return rand % n;
    };
    const expected = new Map<string, Buffer | undefined>();
    const work: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const id = `f${next(12)}`;
      const bytes = bytesFor(1000 + i, 1 + next(150 * KiB));
      if (next(3) === 0) {
        work.push(s.put(idOf(id), bytes).then(() => undefined));
        continue;
      }
      const stream = await s.beginPut(idOf(id), bytes.length);
      // Abandoned at a piece start, so the last piece (which carries the trailer) is never written:
      // a stream abandoned after all its bytes is a complete record, which a rebuild may find.
      const abandonAt = next(4) === 0 ? Math.floor(next(bytes.length) / (8 * KiB)) * 8 * KiB : -1;
      work.push(
        (async () => {
          for (let off = 0; off < bytes.length; off += 8 * KiB) {
            if (abandonAt >= 0 && off >= abandonAt) {
              await stream.abandon();
              return;
            }
            stream.write(bytes.subarray(off, Math.min(bytes.length, off + 8 * KiB)), off);
            if (next(2) === 0) await nextTurn();
          }
          if (abandonAt >= 0) await stream.abandon();
          else await stream.finish();
        })(),
      );
      if (abandonAt >= 0) expected.set(`abandoned:${i}`, bytes);
    }
    await Promise.all(work);
    // Every id holds the bytes of one of its acknowledged puts, never an abandoned payload.
    const abandoned = [...expected.values()];
    for (let k = 0; k < 12; k++) {
      const got = await s.get(idOf(`f${k}`));
      if (got !== undefined) for (const b of abandoned) expect(got.bytes.equals(b!)).toBe(false);
    }
    const before = new Map<string, Buffer | undefined>();
    for (let k = 0; k < 12; k++) before.set(`f${k}`, (await s.get(idOf(`f${k}`)))?.bytes);
    await s.rebuildIndex();
    for (let k = 0; k < 12; k++) {
      const got = (await s.get(idOf(`f${k}`)))?.bytes;
      expect(got === undefined ? undefined : got.toString('hex')).toBe(before.get(`f${k}`)?.toString('hex'));
    }
  });
});
