import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isTwError } from '@tw/errors';
import { extentFileName, FaultyFileLayer, nodeFileLayer, openExtentStore, type CorruptionReport, type ExtentStore } from '../src/index.js';
import { bytesFor, idOf, MiB, TempDirs } from './helpers.js';

const dirs = new TempDirs();
const stores: ExtentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  dirs.cleanup();
});

describe('reads of large records', () => {
  it('reads back large payloads of awkward sizes intact, into a buffer or not', async () => {
    const s = await openExtentStore({ dir: dirs.make(), extentSizeBytes: 32 * MiB, reserveBytes: 0 });
    stores.push(s);
    for (const [i, size] of [2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 5 * MiB + 12345, 8 * MiB].entries()) {
      const bytes = bytesFor(i, size);
      await s.put(idOf(`big${i}`), bytes);
      expect((await s.get(idOf(`big${i}`)))!.bytes.equals(bytes)).toBe(true);
      const into = Buffer.alloc(size + 100);
      const got = (await s.get(idOf(`big${i}`), { into }))!;
      expect(got.bytes.buffer).toBe(into.buffer);
      expect(got.bytes.equals(bytes)).toBe(true);
    }
  });

  it('a bit flipped anywhere (start, middle, end, trailer) is caught and never served', async () => {
    const dir = dirs.make();
    const faulty = new FaultyFileLayer(nodeFileLayer(), 4);
    const reports: CorruptionReport[] = [];
    const s = await openExtentStore({ dir, files: faulty, extentSizeBytes: 32 * MiB, reserveBytes: 0, onCorrupt: (r) => reports.push(r) });
    stores.push(s);
    const size = 5 * MiB + 77;
    const where = [100, 2 * MiB + 5, 5 * MiB + 10, -1];
    for (const [i, at] of where.entries()) {
      await s.put(idOf(`f${i}`), bytesFor(10 + i, size));
      const st = (await s.stat(idOf(`f${i}`)))!;
      const headerBytes = 32 + st.id.byteLength + 8;
      const pos = at >= 0 ? st.offset + headerBytes + at : st.offset + headerBytes + size + 3; // -1: inside the trailer
      await faulty.flipBitOnDisk(join(dir, extentFileName(st.extentNo)), pos, i);
      const err = await s.get(idOf(`f${i}`)).catch((e: unknown) => e);
      expect(isTwError(err, 'TW_EXTENT_CORRUPT'), `flip ${i}`).toBe(true);
    }
    expect(reports.length).toBe(where.length);
  });

  it('an EIO on the read fails it with TW_EXTENT_IO; the next read is whole', async () => {
    const faulty = new FaultyFileLayer(nodeFileLayer(), 5);
    const s = await openExtentStore({ dir: dirs.make(), files: faulty, extentSizeBytes: 32 * MiB, reserveBytes: 0 });
    stores.push(s);
    const bytes = bytesFor(3, 4 * MiB + 9);
    await s.put(idOf('x'), bytes);
    const st = (await s.stat(idOf('x')))!;
    let failed = 0;
    faulty.faults.eioOnRead = (_path, position) => {
      if (position >= st.offset && failed === 0) {
        failed++;
        return true;
      }
      return false;
    };
    const err = await s.get(idOf('x')).catch((e: unknown) => e);
    expect(isTwError(err, 'TW_EXTENT_IO')).toBe(true);
    faulty.faults.eioOnRead = undefined;
    expect((await s.get(idOf('x')))!.bytes.equals(bytes)).toBe(true);
  });
});
