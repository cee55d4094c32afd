import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { cachingKvStore, levelKvStore, memoryKvStore } from '../src/index.js';
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

kvStoreCompliance('cachingKvStore over levelKvStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tw-block-map-kv-'));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  const store = cachingKvStore(levelKvStore(db), { cacheable: (k) => k.byteLength % 2 === 0 });
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
});
