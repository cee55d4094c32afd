/** The DRAM tier's bound, back-pressure and abort, through the gateway against real nodes. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TestCluster, key, seededBytes } from './cluster.js';

const KiB = 1024;

describe('DRAM tier', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(6);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  test('never holds more than its bytes; a full tier makes puts wait, abortably, until commits free room', async () => {
    const TIER = 1024 * KiB;
    const gw = await cluster.gateway({ dramTierBytes: TIER });
    let maxSeen = 0;
    const sample = (): void => {
      maxSeen = Math.max(maxSeen, gw.stats().dramTierBytes);
    };
    const release = cluster.coordinator.holdCommits();
    try {
      const accepted = [];
      for (let i = 0; i < 4; i++) {
        accepted.push(await gw.put('default', key(`bp-${i}`), seededBytes(256 * KiB, i), { mode: 'async' }));
        sample();
      }
      expect(gw.stats().dramTierBytes).toBe(TIER);
      // Full of uncommitted blocks: the next put waits; aborting it is a coded error.
      const ac = new AbortController();
      const waiting = gw.put('default', key('bp-aborted'), seededBytes(256 * KiB, 9), { signal: ac.signal });
      let settled = false;
      void waiting.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(false);
      ac.abort();
      await expect(waiting).rejects.toMatchObject({ code: 'TW_GATEWAY_ABORTED' });
      sample();
      // An aborted put left nothing behind.
      expect(await gw.get('default', key('bp-aborted'))).toBeUndefined();
      const next = gw.put('default', key('bp-4'), seededBytes(256 * KiB, 4), { mode: 'async' });
      let nextDone = false;
      void next.then(() => (nextDone = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(nextDone).toBe(false);
      sample();
      release();
      await next;
      sample();
      for (const a of accepted) expect((await a.committed).ok).toBe(true);
      expect((await (await next).committed).ok).toBe(true);
      sample();
      expect(maxSeen).toBeLessThanOrEqual(TIER);
      expect(gw.stats().dramEvictions).toBeGreaterThan(0);
      // Evicted blocks are still served, from the storage nodes.
      for (let i = 0; i <= 4; i++) expect((await gw.get('default', key(`bp-${i}`)))!.equals(seededBytes(256 * KiB, i))).toBe(true);
      sample();
      expect(maxSeen).toBeLessThanOrEqual(TIER);
    } finally {
      release();
    }
  });

  test('a value larger than the tier is refused with a coded error', async () => {
    const gw = await cluster.gateway({ dramTierBytes: 64 * KiB });
    await expect(gw.put('default', key('huge'), Buffer.alloc(65 * KiB))).rejects.toMatchObject({ code: 'TW_GATEWAY_VALUE_TOO_LARGE' });
  });

  test('an async put whose commit fails drops its DRAM copy and reports the failure', async () => {
    const failures: string[] = [];
    const gw = await cluster.gateway({}, { hooks: { onWriteFailed: (_ns, _k, e) => failures.push(e.code) } });
    // Namespace unknown to the coordinators: the commit is refused.
    const r = await gw.put('nosuchns', key('x'), seededBytes(1000, 1));
    const outcome = await r.committed;
    expect(outcome.ok).toBe(false);
    expect(failures).toEqual(['TW_GATEWAY_COMMIT_FAILED']);
    expect(await gw.get('default', key('x'))).toBeUndefined();
    expect(gw.stats().dramTierBytes).toBe(0);
    expect(gw.stats().orphanedBlocks).toBe(1);
    await expect(gw.put('nosuchns', key('y'), seededBytes(10, 1), { mode: 'sync' })).rejects.toMatchObject({ code: 'TW_GATEWAY_COMMIT_FAILED' });
  });

  test('close fails waiting puts with TW_GATEWAY_CLOSED and refuses new calls', async () => {
    const gw = await cluster.gateway({ dramTierBytes: 128 * KiB });
    const release = cluster.coordinator.holdCommits();
    try {
      await gw.put('default', key('c-1'), seededBytes(128 * KiB, 1));
      const waiting = gw.put('default', key('c-2'), seededBytes(128 * KiB, 2));
      const closing = gw.close();
      await expect(waiting).rejects.toMatchObject({ code: 'TW_GATEWAY_CLOSED' });
      release();
      await closing;
      await expect(gw.get('default', key('c-1'))).rejects.toMatchObject({ code: 'TW_GATEWAY_CLOSED' });
    } finally {
      release();
    }
  });
});
