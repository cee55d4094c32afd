import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelRaftStorage } from '../src/index.js';
import { MemoryStorage } from './raft-imports.js';
import { storageComplianceSuite, type StorageUnderTest } from './storage-compliance.js';

function memory(): StorageUnderTest {
  const m = new MemoryStorage();
  return {
    storage: m,
    persist: async (u) => {
      if (u.snapshot !== undefined) m.applySnapshot(u.snapshot);
      if (u.entries !== undefined) m.append(u.entries);
      if (u.hardState !== undefined) m.setHardState(u.hardState);
      if (u.confState !== undefined) m.setConfState(u.confState);
    },
    compact: async (i) => m.compact(i),
    createSnapshot: async (i, cs, data) => m.createSnapshot(i, cs, data),
    close: async () => undefined,
  };
}

storageComplianceSuite({ name: 'MemoryStorage (@tw/raft)', create: async () => memory() });

const dirs: string[] = [];
const where = new WeakMap<StorageUnderTest, string>();

async function level(dir: string): Promise<StorageUnderTest> {
  const l = await LevelRaftStorage.open(dir, { sync: false });
  const s: StorageUnderTest = {
    storage: l,
    persist: (u) => l.persist(u),
    compact: (i) => l.compact(i),
    createSnapshot: (i, cs, data) => l.createSnapshot(i, cs, data),
    close: () => l.close(),
  };
  where.set(s, dir);
  return s;
}

storageComplianceSuite({
  name: 'LevelRaftStorage',
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-raft-level-'));
    dirs.push(dir);
    return level(dir);
  },
  reopen: async (s) => {
    await s.close();
    return level(where.get(s)!);
  },
  cleanup: async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  },
});
