import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { levelKvStore, memoryKvStore } from '../src/index.js';
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
