import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { describe, expect, it } from 'vitest';
import { type CachingKvStoreOptions, type KvOp, type LevelLike, cachingKvStore, levelKvStore, memoryKvStore } from '../src/index.js';
import { kvStoreCompliance } from './kv-store-compliance.js';

kvStoreCompliance('memoryKvStore', async () => ({ store: memoryKvStore(), close: () => Promise.resolve() }));

kvStoreCompliance('levelKvStore (classic-level)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-block-map-kv-'));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return {
    store: levelKvStore(db),
    close: async () => {
      try {
        await db.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
});

kvStoreCompliance('cachingKvStore over memoryKvStore (every key cached)', async () => ({
  store: cachingKvStore(memoryKvStore(), { cacheable: () => true, cacheEntriesMax: 4 }),
  close: () => Promise.resolve(),
}));

/** A caching store over a fresh classic-level database, flushed and removed on close. */
const cachingOverLevel = (options: CachingKvStoreOptions) => async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-block-map-kv-'));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  const store = cachingKvStore(levelKvStore(db), options);
  return {
    store,
    close: async () => {
      try {
        await store.flush();
        await db.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
};

kvStoreCompliance('cachingKvStore over levelKvStore', cachingOverLevel({ cacheable: (k) => k.byteLength % 2 === 0 }));

kvStoreCompliance(
  'cachingKvStore over levelKvStore, adopting writes (as the coordinator runs it)',
  cachingOverLevel({ cacheable: (k) => k.byteLength % 2 === 0, adoptWrites: true }),
  { adoptsWrites: true },
);

describe('levelKvStore write path', () => {
  const withDb = async (fn: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-block-map-kv-'));
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    try {
      await fn(db);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('hands a classic-level database its ops through the private batch, views intact', async () => {
    await withDb(async (db) => {
      const calls: number[] = [];
      // The private method is not in classic-level's types; watch it through the shape levelKvStore uses.
      const raw = db as unknown as Required<Pick<LevelLike, '_batch'>>;
      const original = raw._batch.bind(db);
      raw._batch = (ops, options) => {
        calls.push(ops.length);
        return original(ops, options);
      };
      const store = levelKvStore(db);
      // Views into a larger buffer at an offset: only the viewed bytes may be stored.
      const backing = new Uint8Array([9, 9, 1, 2, 3, 255, 0, 7, 9]);
      await store.write([
        { type: 'put', key: backing.subarray(2, 5), value: backing.subarray(5, 8) },
        { type: 'put', key: Uint8Array.from([4]), value: new Uint8Array(0) },
      ]);
      await store.write([{ type: 'del', key: Uint8Array.from([4]) }]);
      expect(calls).toEqual([2, 1]);
      expect([...((await store.get(Uint8Array.from([1, 2, 3]))) ?? [])]).toEqual([255, 0, 7]);
      expect(await store.get(Uint8Array.from([4]))).toBeUndefined();
    });
  });

  it('refuses a malformed op on the private path instead of storing what the native batch makes of it', async () => {
    await withDb(async (db) => {
      const store = levelKvStore(db);
      const bad = [{ type: 'put', key: Uint8Array.from([1]), value: undefined }] as unknown as KvOp[];
      await expect(store.write(bad)).rejects.toThrow(/malformed KvOp/);
      expect(await store.get(Uint8Array.from([1]))).toBeUndefined();
    });
  });

  it('writes to a sublevel through its public batch, under the sublevel prefix', async () => {
    await withDb(async (db) => {
      const sub = db.sublevel<Uint8Array, Uint8Array>('blocks', { keyEncoding: 'view', valueEncoding: 'view' });
      const store = levelKvStore(sub);
      await store.write([{ type: 'put', key: Uint8Array.from([1, 2]), value: Uint8Array.from([3]) }]);
      expect([...((await store.get(Uint8Array.from([1, 2]))) ?? [])]).toEqual([3]);
      // Not at the bare key in the parent: the sublevel's prefix was applied.
      expect(await db.get(Uint8Array.from([1, 2]))).toBeUndefined();
      expect(await db.get(Uint8Array.from([...Buffer.from('!blocks!'), 1, 2]))).toBeDefined();
    });
  });

  it('refuses writes after the database closed, with the database error', async () => {
    await withDb(async (db) => {
      const store = levelKvStore(db);
      await db.close();
      await expect(store.write([{ type: 'put', key: Uint8Array.from([1]), value: Uint8Array.from([1]) }])).rejects.toThrow(/not open/i);
      await db.open();
    });
  });
});
