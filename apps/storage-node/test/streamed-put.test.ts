import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { checksum64, encodeFragmentHeader, keyHash64 } from '@tw/block-format';
import { FaultyFileLayer, nodeFileLayer, openExtentStore, type ExtentStore } from '@tw/extent-store';
import { encodeFragmentId } from '@tw/fragment-protocol';
import { StreamedPut } from '../src/streamed-put.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(): Promise<{ store: ExtentStore; faulty: FaultyFileLayer }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sp-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const faulty = new FaultyFileLayer(nodeFileLayer(), 1);
  const store = await openExtentStore({ dir, files: faulty, extentSizeBytes: 4 * 1024 * 1024, reserveBytes: 0 });
  cleanups.push(() => store.close());
  return { store, faulty };
}

/** A PUT payload (fragment header + bytes) for key `key`, and its fragment id. */
function fragment(key: string, bytes: Buffer): { id: Buffer; payload: Buffer } {
  const k = Buffer.from(key);
  const header = encodeFragmentHeader({
    redundancy: { kind: 'none' },
    fragmentIndex: 0,
    fragmentLength: bytes.length,
    keyHash: keyHash64('default', k),
    blockVersion: 1n,
    payloadLength: bytes.length,
    fragmentChecksum: checksum64(bytes),
  });
  return { id: encodeFragmentId({ namespace: 'default', key: k, version: 1n, index: 0 }), payload: Buffer.concat([header, bytes]) };
}

/** Lets the store's writes run until the file layer sees no new write for a while (bounded in turns). */
async function settleWrites(store: ExtentStore, faulty: FaultyFileLayer): Promise<void> {
  // First the stream must be open and its header written (beginPut takes a few turns).
  for (let i = 0; i < 2000 && (store.openPutStreams === 0 || faulty.writes === 0); i++) await new Promise((r) => setTimeout(r, 1));
  let last = -1;
  for (let i = 0; i < 200 && faulty.writes !== last; i++) {
    last = faulty.writes;
    for (let k = 0; k < 20; k++) await nextTurn();
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('StreamedPut', () => {
  test('writes the fragment while it arrives and stores it byte-identical', async () => {
    const { store } = await open();
    const bytes = Buffer.alloc(1_000_000);
    for (let j = 0; j < bytes.length; j += 4096) bytes.writeUInt32LE((j * 2654435761) >>> 0, j);
    const f = fragment('good', bytes);
    const buffer = Buffer.from(f.payload);
    const put = new StreamedPut(store, f.id, buffer, buffer.length);
    for (const n of [10, 64, 200_000, 700_000, buffer.length]) put.onBytes(n);
    await put.finish();
    expect((await store.get(f.id))!.bytes.equals(f.payload)).toBe(true);
  });

  test('a fragment that fails its checksum never gets a valid record on disk, even for an index rebuild', async () => {
    const { store, faulty } = await open();
    const bytes = Buffer.alloc(600_000, 3);
    const f = fragment('bad', bytes);
    const buffer = Buffer.from(f.payload);
    buffer[400_000]! ^= 0x10;
    const put = new StreamedPut(store, f.id, buffer, buffer.length);
    put.onBytes(300_000);
    put.onBytes(buffer.length);
    // Give every write the node would issue time to land before the handler gives up.
    await settleWrites(store, faulty);
    await expect(put.finish()).rejects.toMatchObject({ code: 'TW_CHECKSUM_MISMATCH' });
    await put.abandon();
    expect(await store.get(f.id)).toBeUndefined();
    await store.rebuildIndex();
    expect(await store.get(f.id)).toBeUndefined();
  });
});
