import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checksum64 } from '@tw/block-format';
import { TestCluster, key, seededBytes } from './cluster.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('gateway-core against 6 real storage nodes (ec:4+2)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(6);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  test('put / get round trip for sizes 1 B .. 32 MiB, not multiples of k', async () => {
    const gw = await cluster.gateway({ dramTierBytes: 128 * MiB });
    const reader = await cluster.gateway({ dramTierBytes: 16 * MiB });
    const sizes = [0, 1, 3, 7, 8, 33, 4095, 64 * KiB + 1, MiB - 3, 8 * MiB + 5, 32 * MiB - 1];
    for (const [i, size] of sizes.entries()) {
      const value = seededBytes(size, 1000 + i);
      await gw.put('default', key(`size-${size}`), value, { mode: 'sync' });
      // Another gateway reads it from the storage nodes (no DRAM copy there).
      const got = await reader.get('default', key(`size-${size}`));
      expect(got?.length).toBe(size);
      expect(checksum64(got!)).toBe(checksum64(value));
    }
    expect(reader.stats().dramHits).toBe(0);
    expect(reader.stats().badFragments).toBe(0);
  });

  test('getParts: cold reads come back as the verified data fragments, hits as the tier buffer', async () => {
    const gw = await cluster.gateway({ dramTierBytes: 64 * MiB });
    // No hedging here: a data fragment later than the hedge deadline (50 ms, easily passed on a
    // loaded CI machine) would bring parity in and mark the read degraded. `degraded` must mean
    // that a fragment failed, which is what this test checks; hedging has its own test (faults).
    const reader = await cluster.gateway({ dramTierBytes: 16 * MiB, hedgeMs: 60_000 });
    const sizes = [0, 1, 7, 33, 64 * KiB + 1, 8 * MiB + 5];
    for (const [i, size] of sizes.entries()) {
      const value = seededBytes(size, 2000 + i);
      await gw.put('default', key(`parts-${size}`), value, { mode: 'sync' });
      const cold = await reader.getParts('default', key(`parts-${size}`));
      expect(cold?.sizeBytes).toBe(size);
      expect(cold!.degraded).toBe(false);
      // ec:4+2: k = 4 parts, none copied into one buffer (a tiny value fits in fewer shards, which are 8-byte aligned).
      expect(cold!.parts.length).toBeLessThanOrEqual(4);
      if (size >= 64 * KiB) expect(cold!.parts.length).toBe(4);
      expect(Buffer.concat(cold!.parts).equals(value)).toBe(true);
      cold!.release();
      cold!.release(); // idempotent
      const hot = await gw.getParts('default', key(`parts-${size}`));
      expect(hot!.parts.length).toBe(1);
      expect(hot!.parts[0]!.equals(value)).toBe(true);
      hot!.release();
    }
    expect(await reader.getParts('default', key('parts-absent'))).toBeUndefined();
    // Released buffers are reused by the next read: parts read before the release keep their
    // bytes until then, and later reads are still right.
    const a = await reader.getParts('default', key(`parts-${8 * MiB + 5}`));
    const b = await reader.getParts('default', key(`parts-${64 * KiB + 1}`));
    expect(Buffer.concat(a!.parts).equals(seededBytes(8 * MiB + 5, 2000 + 5))).toBe(true);
    a!.release();
    const c = await reader.getParts('default', key(`parts-${8 * MiB + 5}`));
    expect(Buffer.concat(b!.parts).equals(seededBytes(64 * KiB + 1, 2000 + 4))).toBe(true);
    expect(Buffer.concat(c!.parts).equals(seededBytes(8 * MiB + 5, 2000 + 5))).toBe(true);
    b!.release();
    c!.release();
    expect(reader.stats().dramHits).toBe(0);
  });

  test('lookups take packed records, and message-form records from a coordinator that sends only those', async () => {
    const gw = await cluster.gateway();
    const value = seededBytes(70_000, 31);
    await gw.put('default', key('packed-a'), value, { mode: 'sync' });
    // Packed or message records, from a coordinator that reads packed keys or one that predates them.
    for (const [packed, legacy] of [[true, false], [false, false], [true, true], [false, true]] as const) {
      cluster.coordinator.packedLookups = packed;
      cluster.coordinator.legacyLookups = legacy;
      try {
        const reader = await cluster.gateway({ recordLeaseMs: 0 });
        const calls = cluster.coordinator.lookupCalls;
        expect((await reader.lookupPrefix('default', [key('packed-a'), key('packed-absent')])).hits).toBe(1);
        // A legacy coordinator costs one more call (the keys resent as messages), a current one none.
        expect(cluster.coordinator.lookupCalls - calls).toBe(legacy ? 2 : 1);
        expect((await reader.get('default', key('packed-a')))!.equals(value)).toBe(true);
      } finally {
        cluster.coordinator.packedLookups = true;
        cluster.coordinator.legacyLookups = false;
      }
    }
  });

  test('a value given as several buffers is stored as their concatenation', async () => {
    const gw = await cluster.gateway();
    const parts = [seededBytes(1000, 1), seededBytes(3, 2), seededBytes(70_000, 3)];
    await gw.put('default', key('parts'), parts, { mode: 'sync' });
    const other = await cluster.gateway();
    expect((await other.get('default', key('parts')))!.equals(Buffer.concat(parts))).toBe(true);
  });

  test('async put: read-your-writes at once; another gateway sees it only after the commit', async () => {
    const writer = await cluster.gateway();
    const other = await cluster.gateway({ recordLeaseMs: 0 });
    const value = seededBytes(300_000, 42);
    const release = cluster.coordinator.holdCommits();
    let committedSeen = false;
    try {
      const res = await writer.put('default', key('ryw'), value, { mode: 'async' });
      void res.committed.then(() => (committedSeen = true));
      expect((await writer.get('default', key('ryw')))!.equals(value)).toBe(true);
      expect((await writer.lookupPrefix('default', [key('ryw')])).hits).toBe(1);
      expect(await other.get('default', key('ryw'))).toBeUndefined();
      expect((await other.lookupPrefix('default', [key('ryw')])).hits).toBe(0);
      expect(committedSeen).toBe(false);
      release();
      const outcome = await res.committed;
      expect(outcome).toEqual({ ok: true, version: res.version });
      expect((await other.get('default', key('ryw')))!.equals(value)).toBe(true);
    } finally {
      release();
    }
  });

  test('sync put resolves only after the commit', async () => {
    const writer = await cluster.gateway();
    const other = await cluster.gateway({ recordLeaseMs: 0 });
    const release = cluster.coordinator.holdCommits();
    let done = false;
    try {
      const p = writer.put('default', key('sync-1'), seededBytes(5000, 5), { mode: 'sync' }).then((r) => {
        done = true;
        return r;
      });
      // Wait until the commit reached the (held) coordinator: bounded polling on a counter.
      const calls = cluster.coordinator.commitCalls;
      for (let i = 0; i < 500 && cluster.coordinator.commitCalls === calls; i++) await new Promise((r) => setTimeout(r, 5));
      expect(cluster.coordinator.commitCalls).toBeGreaterThan(calls);
      expect(done).toBe(false);
      release();
      const r = await p;
      expect(done).toBe(true);
      expect((await other.get('default', key('sync-1')))!.equals(seededBytes(5000, 5))).toBe(true);
      expect(typeof r.version).toBe('bigint');
    } finally {
      release();
    }
  });

  test('a newer put replaces the older version everywhere', async () => {
    const gw = await cluster.gateway();
    const other = await cluster.gateway({ recordLeaseMs: 0, dramLeaseMs: 0 });
    const a = await gw.put('default', key('over'), seededBytes(10_000, 1), { mode: 'sync' });
    const b = await gw.put('default', key('over'), seededBytes(12_345, 2), { mode: 'sync' });
    expect(b.version > a.version).toBe(true);
    expect((await gw.get('default', key('over')))!.equals(seededBytes(12_345, 2))).toBe(true);
    expect((await other.get('default', key('over')))!.equals(seededBytes(12_345, 2))).toBe(true);
  });

  test('lookupPrefix counts leading hits and stops at the first miss; one call per batch', async () => {
    const gw = await cluster.gateway();
    const other = await cluster.gateway();
    const keys = Array.from({ length: 10 }, (_, i) => key(`prefix-${i}`));
    for (const i of [0, 1, 2, 3, 5, 6]) await gw.put('default', keys[i]!, seededBytes(100 + i, i), { mode: 'sync' });
    const before = cluster.coordinator.lookupCalls;
    expect((await other.lookupPrefix('default', keys)).hits).toBe(4);
    expect(cluster.coordinator.lookupCalls - before).toBe(1);
    // The leased records answer the second time without a call for the cached prefix.
    expect((await other.lookupPrefix('default', keys.slice(0, 4))).hits).toBe(4);
    expect(cluster.coordinator.lookupCalls - before).toBe(1);
    expect((await other.lookupPrefix('default', [key('nope'), ...keys])).hits).toBe(0);
    expect((await other.lookupPrefix('default', [])).hits).toBe(0);
    // 5000 keys: two coordinator batches (4096 + 904) when all hit; here they all miss after 4.
    const many = [...keys.slice(0, 4), ...Array.from({ length: 4996 }, (_, i) => key(`absent-${i}`))];
    expect((await gw.lookupPrefix('default', many)).hits).toBe(4);
  });

  test('lookupPrefix with prefetch fills the DRAM tier; later gets are DRAM hits', async () => {
    const gw = await cluster.gateway();
    const reader = await cluster.gateway();
    const keys = Array.from({ length: 4 }, (_, i) => key(`pf-${i}`));
    for (const [i, k] of keys.entries()) await gw.put('default', k, seededBytes(200_000, 70 + i), { mode: 'sync' });
    expect((await reader.lookupPrefix('default', keys, { prefetch: true })).hits).toBe(4);
    for (let i = 0; i < 200 && reader.stats().dramTierEntries < 4; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reader.stats().dramTierEntries).toBe(4);
    const hitsBefore = reader.stats().dramHits;
    for (const [i, k] of keys.entries()) expect((await reader.get('default', k))!.equals(seededBytes(200_000, 70 + i))).toBe(true);
    expect(reader.stats().dramHits - hitsBefore).toBe(4);
  });

  test('mget returns values and misses in order; get into a caller buffer', async () => {
    const gw = await cluster.gateway();
    const other = await cluster.gateway();
    await gw.put('default', key('m-a'), seededBytes(1234, 1), { mode: 'sync' });
    await gw.put('default', key('m-c'), seededBytes(99_999, 3), { mode: 'sync' });
    const got = await other.mget('default', [key('m-a'), key('m-b'), key('m-c')]);
    expect(got[0]!.equals(seededBytes(1234, 1))).toBe(true);
    expect(got[1]).toBeUndefined();
    expect(got[2]!.equals(seededBytes(99_999, 3))).toBe(true);
    const into = Buffer.alloc(200_000);
    const v = await other.get('default', key('m-c'), { into });
    expect(v!.buffer).toBe(into.buffer);
    expect(v!.equals(seededBytes(99_999, 3))).toBe(true);
    await expect(other.get('default', key('m-c'), { into: Buffer.alloc(10) })).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
  });

  test('namespaces do not share keys', async () => {
    const gw = await cluster.gateway();
    await gw.put('default', key('shared-name'), seededBytes(100, 1), { mode: 'sync' });
    await gw.put('other', key('shared-name'), seededBytes(100, 2), { mode: 'sync' });
    const other = await cluster.gateway();
    expect((await other.get('default', key('shared-name')))!.equals(seededBytes(100, 1))).toBe(true);
    expect((await other.get('other', key('shared-name')))!.equals(seededBytes(100, 2))).toBe(true);
  });

  test('delete: the key is gone from this and other gateways', async () => {
    const gw = await cluster.gateway({ recordLeaseMs: 0 });
    const other = await cluster.gateway({ recordLeaseMs: 0 });
    await gw.put('default', key('del'), seededBytes(5000, 9), { mode: 'sync' });
    expect(await other.get('default', key('del'))).toBeDefined();
    expect(await gw.delete('default', key('del'))).toBe(true);
    expect(await gw.get('default', key('del'))).toBeUndefined();
    expect(await other.get('default', key('del'))).toBeUndefined();
    expect((await other.lookupPrefix('default', [key('del')])).hits).toBe(0);
    expect(await gw.delete('default', key('del'))).toBe(false);
    // Deleting an accepted block whose commit is still out: it stays deleted after the commit.
    const release = cluster.coordinator.holdCommits();
    try {
      const calls = cluster.coordinator.commitCalls;
      const r = await gw.put('default', key('del-pending'), seededBytes(3000, 10));
      // Wait until its commit reached the (held) coordinator.
      for (let i = 0; i < 500 && cluster.coordinator.commitCalls === calls; i++) await new Promise((res) => setTimeout(res, 5));
      expect(cluster.coordinator.commitCalls).toBeGreaterThan(calls);
      const deleting = gw.delete('default', key('del-pending'));
      expect(await gw.get('default', key('del-pending'))).toBeUndefined();
      release();
      expect(await deleting).toBe(true);
      await r.committed;
      expect(await other.get('default', key('del-pending'))).toBeUndefined();
      expect(await gw.get('default', key('del-pending'))).toBeUndefined();
    } finally {
      release();
    }
  });

  test('layout and TTL reach the block record', async () => {
    const gw = await cluster.gateway();
    const layout = { modelId: 'llama-3.1-8b', dtypeCode: 3, memoryFormatCode: 1, layers: 32, tokens: 256, kvHeads: 8, headDim: 128 };
    await gw.put('default', key('with-layout'), seededBytes(4096, 8), { mode: 'sync', layout, ttlMs: 60_000 });
    const rec = await cluster.coordinator.map.getBlock('default', key('with-layout'));
    expect(rec?.layout).toEqual(layout);
    expect(rec?.ttlMs).toBe(60_000);
    expect(rec?.checksum).toBe(checksum64(seededBytes(4096, 8)));
  });

  test('reads work with an in-flight budget smaller than one fragment, and return every byte of it', async () => {
    const gw = await cluster.gateway();
    await gw.put('default', key('tight'), seededBytes(3 * MiB + 1, 12), { mode: 'sync' });
    const reader = await cluster.gateway({ inflightBytesMax: 64 * KiB });
    const got = await reader.mget('default', [key('tight'), key('tight'), key('tight')]);
    for (const g of got) expect(g!.equals(seededBytes(3 * MiB + 1, 12))).toBe(true);
    // Hedged reads still out when a block completed are aborted and give their bytes back.
    for (let i = 0; i < 100 && reader.stats().inflightBytes > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reader.stats().inflightBytes).toBe(0);
  });

  test('an aborted get rejects with TW_GATEWAY_ABORTED and leaks no in-flight bytes', async () => {
    const gw = await cluster.gateway();
    await gw.put('default', key('abort-get'), seededBytes(2 * MiB, 13), { mode: 'sync' });
    const reader = await cluster.gateway();
    const ac = new AbortController();
    const p = reader.get('default', key('abort-get'), { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'TW_GATEWAY_ABORTED' });
    // The record is cached now: abort in the middle of the fragment reads.
    const ac2 = new AbortController();
    const p2 = reader.get('default', key('abort-get'), { signal: ac2.signal });
    setImmediate(() => ac2.abort());
    await expect(p2).rejects.toMatchObject({ code: 'TW_GATEWAY_ABORTED' });
    for (let i = 0; i < 100 && reader.stats().inflightBytes > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reader.stats().inflightBytes).toBe(0);
    expect((await reader.get('default', key('abort-get')))!.equals(seededBytes(2 * MiB, 13))).toBe(true);
  });

  test('bad input is a coded error', async () => {
    const gw = await cluster.gateway();
    await expect(gw.put('Bad NS', key('x'), Buffer.alloc(1))).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
    await expect(gw.put('default', Buffer.alloc(0), Buffer.alloc(1))).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
    await expect(gw.put('default', Buffer.alloc(513), Buffer.alloc(1))).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
    await expect(gw.get('default', Buffer.alloc(0))).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
    await expect(gw.put('default', key('x'), 'text' as unknown as Buffer)).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
    await expect(gw.put('default', key('x'), Buffer.alloc(1), { mode: 'later' as 'sync' })).rejects.toMatchObject({ code: 'TW_GATEWAY_BAD_INPUT' });
  });
});
