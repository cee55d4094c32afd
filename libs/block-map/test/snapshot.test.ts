import { afterEach, describe, expect, it } from 'vitest';
import { isTwError } from '@tw/errors';
import { type KvStore, kvEntries, memoryKvStore, openBlockMap, snapshotChunkIndex } from '../src/index.js';
import { Driver, type StoreHandle, block, enc, levelStore, setupCluster } from './helpers.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

async function* replay(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

async function dump(store: KvStore): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of kvEntries(store)) out.push(`${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);
  return out;
}

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(isTwError(err) ? err.code : String(err)).toBe(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

async function populated(store: KvStore, blocks = 300): Promise<Driver> {
  const d = await Driver.open(store);
  await setupCluster(d);
  for (let i = 0; i < blocks; i += 100) {
    await d.ok({ op: 'commit-blocks', namespace: 'ns', blocks: Array.from({ length: 100 }, (_, j) => block(`key-${i + j}`, 10 + j)) }, 2);
  }
  await d.ok({ op: 'delete-blocks', namespace: 'ns', keys: [enc('key-5'), enc('key-7')] }, 2);
  await d.ok({ op: 'commit-blocks', namespace: 'ns', blocks: [block('key-9', 1)] }, 3);
  return d;
}

describe('snapshots', () => {
  const handles: StoreHandle[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) await h.close();
  });

  it('streams bounded chunks that restore byte-identical state, with the applied index', async () => {
    const source = memoryKvStore();
    const d = await populated(source);
    const stream = d.map.snapshotChunks(4096);
    expect(stream.appliedIndex).toBe(d.map.appliedIndex);
    const chunks = await collect(stream);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) expect(snapshotChunkIndex(c)).toBe(d.map.appliedIndex);
    // The PG map (one entry of ~1 KiB per 64 PGs here) fits; every other chunk stays near the bound.
    for (const c of chunks.slice(0, -1)) expect(c.byteLength).toBeLessThanOrEqual(4096 + 64);
    const h = await levelStore();
    handles.push(h);
    const target = await openBlockMap(h.store);
    expect(await target.restoreFromChunks(replay(chunks))).toBe(d.map.appliedIndex);
    expect(await dump(h.store)).toEqual(await dump(source));
  });

  it('is a consistent view while applies continue', async () => {
    const store = memoryKvStore();
    const d = await populated(store, 100);
    const digest = await d.map.stateDigest();
    const stream = d.map.snapshotChunks(4096);
    await d.ok({ op: 'commit-blocks', namespace: 'ns', blocks: [block('later')] }, 2);
    const target = await openBlockMap(memoryKvStore());
    await target.restoreFromChunks(stream);
    expect(await target.stateDigest()).toBe(digest);
    expect(await target.getBlock('ns', enc('later'))).toBeUndefined();
  });

  it('refuses corrupt, reordered or truncated chunks and then refuses to serve until a restore completes', async () => {
    const d = await populated(memoryKvStore());
    const chunks = await collect(d.map.snapshotChunks(4096));
    const target = await openBlockMap(memoryKvStore());
    const bad = chunks.map((c) => c.slice());
    bad[1]![20] = bad[1]![20]! ^ 1;
    await expectCode(target.restoreFromChunks(replay(bad)), 'TW_BLOCKMAP_BAD_SNAPSHOT');
    await expectCode(() => target.lookupPrefix('ns', [enc('key-1')]), 'TW_BLOCKMAP_RESTORE_INCOMPLETE');
    await expectCode(target.apply(1_000_000, new Uint8Array(0)), 'TW_BLOCKMAP_RESTORE_INCOMPLETE');
    await expectCode(target.restoreFromChunks(replay([chunks[1]!, chunks[0]!])), 'TW_BLOCKMAP_BAD_SNAPSHOT');
    await expectCode(target.restoreFromChunks(replay(chunks.slice(0, -1))), 'TW_BLOCKMAP_BAD_SNAPSHOT');
    await target.restoreFromChunks(replay(chunks));
    expect(await target.stateDigest()).toBe(await d.map.stateDigest());
    expect((await target.lookupPrefix('ns', [enc('key-0'), enc('key-1')])).count).toBe(2);
  });

  it('a crash in the middle of a restore leaves a marker: reopening refuses to serve until a restore completes', async () => {
    const d = await populated(memoryKvStore());
    const chunks = await collect(d.map.snapshotChunks(4096));
    const h = await levelStore();
    handles.push(h);
    const target = await openBlockMap(h.store);
    // Simulate the crash: the stream dies after two chunks.
    async function* dying(): AsyncGenerator<Uint8Array> {
      yield chunks[0]!;
      yield chunks[1]!;
      throw new Error('process killed');
    }
    await expect(target.restoreFromChunks(dying())).rejects.toThrow('process killed');
    const reopened = await openBlockMap(h.store);
    await expectCode(() => reopened.namespaces(), 'TW_BLOCKMAP_RESTORE_INCOMPLETE');
    await reopened.restoreFromChunks(replay(chunks));
    expect(reopened.appliedIndex).toBe(d.map.appliedIndex);
    expect(await reopened.stateDigest()).toBe(await d.map.stateDigest());
    // And after restoring, it keeps applying where the snapshot left off, like the source.
    const next = d.bytes({ op: 'commit-blocks', namespace: 'ns', blocks: [block('after')] }, 2);
    const a = await d.map.apply(d.map.appliedIndex + 1, next);
    const b = await reopened.apply(reopened.appliedIndex + 1, next);
    expect(b).toEqual(a);
    expect(await reopened.stateDigest()).toBe(await d.map.stateDigest());
  });

  it('remembers client results across snapshot and restore: a retry after restore is a duplicate', async () => {
    const d = await populated(memoryKvStore(), 100);
    const bytes = d.bytes({ op: 'commit-blocks', namespace: 'ns', blocks: [block('retry-me')] }, 9);
    const first = await d.applyBytes(bytes);
    const target = await openBlockMap(memoryKvStore());
    await target.restoreFromChunks(d.map.snapshotChunks(4096));
    const again = await target.apply(target.appliedIndex + 1, bytes);
    expect(again).toMatchObject({ duplicate: true, result: first.result });
  });

  it('applies deterministically: the same commands give byte-identical stores', async () => {
    const s1 = memoryKvStore();
    const s2 = memoryKvStore();
    const d1 = await populated(s1);
    const d2 = await populated(s2);
    await d1.run({ op: 'mark-node-down', id: 'sn-1', silentSinceMs: d1.nowMs }, 0);
    await d2.run({ op: 'mark-node-down', id: 'sn-1', silentSinceMs: d2.nowMs }, 0);
    expect(await dump(s2)).toEqual(await dump(s1));
    expect(d2.map.pgMap()?.slots).toEqual(d1.map.pgMap()?.slots);
  });
});
