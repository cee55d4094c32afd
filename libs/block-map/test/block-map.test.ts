import { afterEach, describe, expect, it } from 'vitest';
import { isTwError } from '@tw/errors';
import { type BlockMap, type CommandResult, type KvStore, LOOKUP_KEYS_MAX, DEDUP_RESULTS_PER_CLIENT_MAX, TOUCH_GRANULARITY_MS, encodeCommand, openBlockMap } from '../src/index.js';
import { pgNodes as pgNodesOf } from '@tw/placement';
import { Driver, NODES, STORES, type StoreHandle, block, enc, setupCluster } from './helpers.js';

const ok = <T extends CommandResult['ok'] extends boolean ? CommandResult : never>(r: T): Extract<T, { ok: true }> => {
  if (!r.ok) expect.fail(`${r.code}: ${r.message}`);
  return r as Extract<T, { ok: true }>;
};

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(isTwError(err) ? err.code : String(err)).toBe(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe.each(STORES)('BlockMap on %s', (_name, openStore) => {
  const handles: StoreHandle[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) await h.close();
  });
  const fresh = async (options: { quotaBytes?: number | null } = {}): Promise<{ d: Driver; map: BlockMap; h: StoreHandle }> => {
    const h = await openStore();
    handles.push(h);
    const d = await Driver.open(h.store);
    await setupCluster(d, options);
    return { d, map: d.map, h };
  };

  it('commits blocks, assigns increasing versions, and looks them up as a prefix', async () => {
    const { d, map } = await fresh();
    const r = ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a'), block('b', 200)] }));
    expect(r.op === 'commit-blocks' && r.versions).toEqual([1, 2]);
    const r2 = ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('c')] }));
    expect(r2.op === 'commit-blocks' && r2.versions).toEqual([3]);
    const look = await map.lookupPrefix('ns', [enc('a'), enc('b'), enc('x'), enc('c')]);
    expect(look.count).toBe(2);
    expect(look.records.map((x) => [Buffer.from(x.key).toString(), x.version, x.sizeBytes, x.state])).toEqual([
      ['a', 1, 100, 'committed'],
      ['b', 2, 200, 'committed'],
    ]);
    expect(look.records[0]!.fragmentNodes).toEqual(['sn-0', 'sn-1', 'sn-2']);
    expect(look.records[0]!.checksum).toBe(0x1234n + 100n);
    expect(look.records[0]!.redundancy).toEqual({ kind: 'ec', k: 2, m: 1 });
    expect(map.namespace('ns')).toMatchObject({ usageBytes: 400, blockCount: 3, garbageBytes: 0 });
  });

  it('a PUT on an existing key writes a new version and returns the superseded fragments', async () => {
    const { d, map } = await fresh();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('k', 100, ['sn-0', 'sn-1', 'sn-2'])] }));
    d.nowMs += 5;
    const r = ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('k', 300, ['sn-3', 'sn-4', 'sn-5'])] }));
    expect(r.op).toBe('commit-blocks');
    if (r.op !== 'commit-blocks') return;
    expect(r.versions).toEqual([2]);
    expect(r.superseded).toEqual([{ key: enc('k'), version: 1, writeVersion: 1n, sizeBytes: 100, fragmentNodes: ['sn-0', 'sn-1', 'sn-2'] }]);
    const rec = await map.getBlock('ns', enc('k'));
    expect(rec).toMatchObject({ version: 2, sizeBytes: 300, fragmentNodes: ['sn-3', 'sn-4', 'sn-5'], state: 'committed' });
    expect(map.namespace('ns')).toMatchObject({ usageBytes: 300, blockCount: 1, garbageBytes: 100, garbageCount: 1 });
    const purgeable = await map.listPurgeable({ nowMs: d.nowMs, graceMs: 0 });
    expect(purgeable).toEqual([{ namespace: 'ns', key: enc('k'), version: 1, deletingSinceMs: d.nowMs }]);
    // The same key twice in one batch: the second supersedes the first.
    const r3 = ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('k', 1), block('k', 2)] }));
    expect(r3.op === 'commit-blocks' && r3.superseded.map((s) => s.version)).toEqual([2, 3]);
    expect(map.namespace('ns')).toMatchObject({ usageBytes: 2, blockCount: 1, garbageCount: 3, garbageBytes: 100 + 300 + 1 });
  });

  it('deleting makes lookups miss at once; purge waits for the grace period', async () => {
    const { d, map } = await fresh();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a'), block('b'), block('c')] }));
    const del = ok(await d.run({ op: 'delete-blocks', namespace: 'ns', keys: [enc('b'), enc('b'), enc('zz')] }));
    expect(del).toEqual({ ok: true, op: 'delete-blocks', deleted: 1, missing: 2 });
    expect((await map.lookupPrefix('ns', [enc('a'), enc('b'), enc('c')])).count).toBe(1);
    expect((await map.getBlock('ns', enc('b')))?.state).toBe('deleting');
    expect(map.namespace('ns')).toMatchObject({ usageBytes: 200, blockCount: 2, garbageBytes: 100, garbageCount: 1 });
    const deletedAt = d.nowMs;
    expect(await map.listPurgeable({ nowMs: d.nowMs, graceMs: 1000 })).toEqual([]);
    const ref = { namespace: 'ns', key: enc('b'), version: 2 };
    const early = ok(await d.run({ op: 'purge-blocks', graceMs: 1000, refs: [ref] }));
    expect(early).toEqual({ ok: true, op: 'purge-blocks', purged: [], skipped: 1 });
    d.nowMs += 1000;
    expect(await map.listPurgeable({ nowMs: d.nowMs, graceMs: 1000 })).toEqual([{ ...ref, deletingSinceMs: deletedAt }]);
    const purged = ok(await d.run({ op: 'purge-blocks', graceMs: 1000, refs: [ref, ref, { ...ref, version: 9 }] }));
    expect(purged).toEqual({ ok: true, op: 'purge-blocks', purged: [{ ...ref, writeVersion: BigInt(ref.version), sizeBytes: 100, fragmentNodes: ['sn-0', 'sn-1', 'sn-2'] }], skipped: 2 });
    expect(await map.getBlock('ns', enc('b'))).toBeUndefined();
    expect(await map.listPurgeable({ nowMs: d.nowMs + 1e9, graceMs: 0 })).toEqual([]);
    expect(map.namespace('ns')).toMatchObject({ garbageBytes: 0, garbageCount: 0 });
  });

  it('lookupPrefix stops at the first miss, deleting or expired block and takes up to 4,096 keys', async () => {
    const { d, map } = await fresh();
    const keys = Array.from({ length: LOOKUP_KEYS_MAX }, (_, i) => enc(`chunk-${i}`));
    for (let i = 0; i < keys.length; i += 1024) {
      ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: keys.slice(i, i + 1024).map((k) => block(k, 1)) }));
    }
    const all = await map.lookupPrefix('ns', keys);
    expect(all.count).toBe(LOOKUP_KEYS_MAX);
    expect(all.records.map((r) => r.version)).toEqual(Array.from({ length: LOOKUP_KEYS_MAX }, (_, i) => i + 1));
    ok(await d.run({ op: 'delete-blocks', namespace: 'ns', keys: [keys[3000]!] }));
    expect((await map.lookupPrefix('ns', keys)).count).toBe(3000);
    await expectCode(map.lookupPrefix('ns', [...keys, enc('one-more')]), 'TW_BLOCKMAP_BAD_QUERY');
    await expectCode(map.lookupPrefix('ns', [enc('a'), new Uint8Array(513)]), 'TW_BLOCKMAP_BAD_KEY');
    await expectCode(map.lookupPrefix('nope', [enc('a')]), 'TW_BLOCKMAP_UNKNOWN_NAMESPACE');
    expect(await map.lookupPrefix('ns', [])).toEqual({ count: 0, records: [] });
    // TTL: expired blocks miss when the caller gives the time; pinned ones never expire.
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [{ ...block('t1'), ttlMs: 1000 }, { ...block('t2'), ttlMs: 1000, pinned: true }, { ...block('t3'), ttlMs: 1000 }] }));
    const t = [enc('t1'), enc('t2'), enc('t3')];
    expect((await map.lookupPrefix('ns', t, { nowMs: d.nowMs + 999 })).count).toBe(3);
    expect((await map.lookupPrefix('ns', t.slice(1), { nowMs: d.nowMs + 1000 })).count).toBe(1);
    expect((await map.lookupPrefix('ns', t, { nowMs: d.nowMs + 1000 })).count).toBe(0);
  });

  it('refuses a batch that would pass the quota, and accepts one that shrinks usage', async () => {
    const { d, map } = await fresh({ quotaBytes: 1000 });
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a', 600), block('b', 400)] }));
    const r = await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('c', 1)] });
    expect(r).toMatchObject({ ok: false, code: 'TW_BLOCKMAP_QUOTA_EXCEEDED', details: { usageBytes: 1000, quotaBytes: 1000, wouldBeBytes: 1001 } });
    expect(await map.getBlock('ns', enc('c'))).toBeUndefined();
    // Overwriting with a smaller block frees room.
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a', 100)] }));
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('c', 500)] }));
    ok(await d.run({ op: 'update-namespace', name: 'ns', quotaBytes: 500 }));
    // Over quota after lowering it: deletes and shrinking overwrites still work, growth does not.
    await d.fail({ op: 'commit-blocks', namespace: 'ns', blocks: [block('d', 1)] }, 'TW_BLOCKMAP_QUOTA_EXCEEDED');
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('c', 400)] }));
    ok(await d.run({ op: 'update-namespace', name: 'ns', quotaBytes: null }));
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('d', 10_000)] }));
    expect(map.namespace('ns')?.usageBytes).toBe(100 + 400 + 400 + 10_000);
  });

  it('answers a retried request with the original result, without applying it again', async () => {
    const { d, map } = await fresh();
    const bytes = d.bytes({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a')] }, 7);
    const first = await d.applyBytes(bytes);
    const digest = await map.stateDigest();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('b')] }, 8));
    const again = await d.applyBytes(bytes);
    expect(again.duplicate).toBe(true);
    expect(again.result).toEqual(first.result);
    expect((await map.getBlock('ns', enc('a')))?.version).toBe(1);
    expect(map.namespace('ns')?.blockCount).toBe(2);
    // An error result is remembered too.
    const bad = d.bytes({ op: 'commit-blocks', namespace: 'missing', blocks: [block('a')] }, 7);
    const e1 = await d.applyBytes(bad);
    ok(await d.run({ op: 'create-namespace', name: 'missing', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'none' }, tokenHash: new Uint8Array() }));
    const e2 = await d.applyBytes(bad);
    expect(e1.result).toMatchObject({ ok: false, code: 'TW_BLOCKMAP_UNKNOWN_NAMESPACE' });
    expect(e2).toMatchObject({ duplicate: true, result: e1.result });
    expect(digest).not.toBe(await map.stateDigest());
  });

  it('forgets results beyond the per-client window and answers older retries REQUEST_EXPIRED', async () => {
    const { d } = await fresh();
    const first = d.bytes({ op: 'touch-blocks', namespace: 'ns', keys: [enc('x')] }, 3);
    await d.applyBytes(first);
    for (let i = 0; i < DEDUP_RESULTS_PER_CLIENT_MAX; i++) await d.run({ op: 'touch-blocks', namespace: 'ns', keys: [enc('x')] }, 3);
    const r = await d.applyBytes(first);
    expect(r.result).toMatchObject({ ok: false, code: 'TW_BLOCKMAP_REQUEST_EXPIRED' });
    // The most recent ones are still remembered.
    const last = await d.applyBytes(d.bytes({ op: 'touch-blocks', namespace: 'ns', keys: [enc('x')] }, 3, DEDUP_RESULTS_PER_CLIENT_MAX + 1));
    expect(last.duplicate).toBe(true);
  });

  it('finds the oldest remembered result of a client that skips sequence numbers', async () => {
    const { d } = await fresh();
    const seqs = Array.from({ length: DEDUP_RESULTS_PER_CLIENT_MAX + 3 }, (_, i) => 1 + i * 50);
    const bytes = seqs.map((seq) => d.bytes({ op: 'touch-blocks', namespace: 'ns', keys: [enc('x')] }, 11, seq));
    for (const b of bytes) await d.applyBytes(b);
    // The three oldest are forgotten, the rest still answered as duplicates.
    for (let i = 0; i < seqs.length; i++) {
      const r = await d.applyBytes(bytes[i]!);
      if (i < 3) expect(r.result).toMatchObject({ ok: false, code: 'TW_BLOCKMAP_REQUEST_EXPIRED' });
      else expect(r.duplicate).toBe(true);
    }
  });

  it('stops applying after a store write fails (memory may be ahead of disk)', async () => {
    const h = await openStore();
    handles.push(h);
    let failWrites = false;
    const s = h.store;
    const flaky: KvStore = {
      get: (k) => s.get(k),
      getMany: (ks) => s.getMany(ks),
      iterator: (r) => s.iterator(r),
      clear: (r) => s.clear(r),
      write: (ops) => (failWrites ? Promise.reject(new Error('disk full')) : s.write(ops)),
    };
    const d = await Driver.open(flaky);
    await setupCluster(d);
    failWrites = true;
    await expect(d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a')] })).rejects.toThrow('disk full');
    failWrites = false;
    await expectCode(d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a')] }), 'TW_BLOCKMAP_CORRUPT_STATE');
    // Reopening from the store recovers the state as of the last good batch.
    const reopened = await openBlockMap(h.store);
    expect(reopened.appliedIndex).toBe(d.index - 2);
    expect(reopened.namespace('ns')?.blockCount).toBe(0);
  });

  it('answers bad input with coded results and changes nothing', async () => {
    const { d, map } = await fresh();
    const before = await map.stateDigest();
    const cases: [Parameters<Driver['run']>[0], string][] = [
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [block(new Uint8Array(513))] }, 'TW_BLOCKMAP_BAD_KEY'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [block(new Uint8Array(0))] }, 'TW_BLOCKMAP_BAD_KEY'],
      [{ op: 'commit-blocks', namespace: 'nope', blocks: [block('a')] }, 'TW_BLOCKMAP_UNKNOWN_NAMESPACE'],
      [{ op: 'commit-blocks', namespace: 'Bad Name', blocks: [block('a')] }, 'TW_BLOCKMAP_BAD_NAMESPACE'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [{ ...block('a'), redundancy: { kind: 'ec', k: 0, m: 1 } }] }, 'TW_BLOCKMAP_BAD_REDUNDANCY'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [{ ...block('a'), redundancy: { kind: 'replicate', n: 9 } }] }, 'TW_BLOCKMAP_BAD_REDUNDANCY'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [block('a'), block('b', 1, ['sn-0'])] }, 'TW_BLOCKMAP_BAD_RECORD'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [block('a', 1, ['sn-0', 'sn-1', 'ghost'])] }, 'TW_BLOCKMAP_UNKNOWN_NODE'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: [{ ...block('a'), layout: { modelId: 'm', dtypeCode: 99, memoryFormatCode: 1, layers: 1, tokens: 1, kvHeads: 1, headDim: 1 } }] }, 'TW_BLOCKMAP_BAD_RECORD'],
      [{ op: 'commit-blocks', namespace: 'ns', blocks: Array.from({ length: 4097 }, (_, i) => block(`k${i}`)) }, 'TW_BLOCKMAP_BATCH_TOO_LARGE'],
      [{ op: 'create-namespace', name: 'ns', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'none' }, tokenHash: new Uint8Array() }, 'TW_BLOCKMAP_NAMESPACE_EXISTS'],
      [{ op: 'create-namespace', name: 'n2', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'ec', k: 17, m: 1 }, tokenHash: new Uint8Array() }, 'TW_BLOCKMAP_BAD_REDUNDANCY'],
      [{ op: 'create-namespace', name: 'n2', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'none' }, tokenHash: new Uint8Array(65) }, 'TW_BLOCKMAP_BAD_NAMESPACE'],
      [{ op: 'update-namespace', name: 'zz', quotaBytes: 5 }, 'TW_BLOCKMAP_UNKNOWN_NAMESPACE'],
      [{ op: 'delete-blocks', namespace: 'ns', keys: [new Uint8Array(600)] }, 'TW_BLOCKMAP_BAD_KEY'],
      [{ op: 'register-node', id: 'bad id!', address: '127.0.0.1:1', domain: 'host-9', weight: 1 }, 'TW_BLOCKMAP_BAD_NODE'],
      [{ op: 'register-node', id: 'sn-9', address: '127.0.0.1:7400', domain: 'host-9', weight: 1 }, 'TW_BLOCKMAP_BAD_NODE'],
      [{ op: 'register-node', id: 'sn-9', address: '127.0.0.1:9', domain: 'a/b', weight: 1 }, 'TW_BLOCKMAP_BAD_NODE'],
      [{ op: 'set-node-state', id: 'ghost', state: 'down' }, 'TW_BLOCKMAP_UNKNOWN_NODE'],
      [{ op: 'init-cluster', rules: { pgCount: 8, domainLevels: ['host'], redundancy: { kind: 'none' }, failureDomain: 'host', domainCapMax: 0 } }, 'TW_BLOCKMAP_CLUSTER_INITIALIZED'],
    ];
    for (const [command, code] of cases) await d.fail(command, code, 0);
    // Command bytes that do not decode.
    const good = encodeCommand({ clientId: 0, seq: 0, nowMs: 1, command: { op: 'delete-namespace', name: 'ns' } });
    for (const bytes of [new Uint8Array(0), Uint8Array.from([2, ...good.subarray(1)]), Uint8Array.from([1, 99, ...good.subarray(2)]), good.subarray(0, good.length - 1), Uint8Array.from([...good, 0])]) {
      const r = await d.applyBytes(bytes);
      expect(r.result).toMatchObject({ ok: false, code: 'TW_BLOCKMAP_BAD_COMMAND' });
    }
    // Only the applied index moved.
    const after = await map.stateDigest();
    expect(after).not.toBe(before);
    expect(map.namespace('ns')).toMatchObject({ usageBytes: 0, blockCount: 0 });
    expect((await map.listBlocks('ns')).records).toEqual([]);
    // Replayed indexes apply nothing.
    const replay = await map.apply(1, good);
    expect(replay.result).toMatchObject({ ok: false, code: 'TW_BLOCKMAP_INDEX_REPLAYED' });
    expect(await map.stateDigest()).toBe(after);
  });

  it('refuses to delete a namespace that still holds blocks', async () => {
    const { d, map } = await fresh();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a')] }));
    await d.fail({ op: 'delete-namespace', name: 'ns' }, 'TW_BLOCKMAP_NAMESPACE_NOT_EMPTY');
    ok(await d.run({ op: 'delete-blocks', namespace: 'ns', keys: [enc('a')] }));
    await d.fail({ op: 'delete-namespace', name: 'ns' }, 'TW_BLOCKMAP_NAMESPACE_NOT_EMPTY');
    ok(await d.run({ op: 'purge-blocks', graceMs: 0, refs: [{ namespace: 'ns', key: enc('a'), version: 1 }] }));
    ok(await d.run({ op: 'delete-namespace', name: 'ns' }));
    expect(map.namespace('ns')).toBeUndefined();
    await d.fail({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a')] }, 'TW_BLOCKMAP_UNKNOWN_NAMESPACE');
  });

  it('touches coarsely', async () => {
    const { d, map } = await fresh();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a')] }));
    const t0 = d.nowMs;
    d.nowMs += TOUCH_GRANULARITY_MS - 1;
    expect(await d.run({ op: 'touch-blocks', namespace: 'ns', keys: [enc('a'), enc('zz')] })).toEqual({ ok: true, op: 'touch-blocks', touched: 0 });
    expect((await map.getBlock('ns', enc('a')))?.lastAccessMs).toBe(t0);
    d.nowMs += 1;
    expect(await d.run({ op: 'touch-blocks', namespace: 'ns', keys: [enc('a'), enc('a')] })).toEqual({ ok: true, op: 'touch-blocks', touched: 1 });
    expect((await map.getBlock('ns', enc('a')))?.lastAccessMs).toBe(d.nowMs);
  });

  it('pages through a namespace with listBlocks', async () => {
    const { d, map } = await fresh();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: ['d', 'a', 'c', 'b', 'e'].map((k) => block(k)) }));
    const seen: string[] = [];
    let after: Uint8Array | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await map.listBlocks('ns', { limit: 2, ...(after === undefined ? {} : { afterKey: after }) });
      seen.push(...page.records.map((r) => Buffer.from(r.key).toString()));
      if (page.nextAfterKey === null) break;
      after = page.nextAfterKey;
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('keeps the cluster map and PG map: epochs move on membership changes', async () => {
    const { d, map } = await fresh();
    const cm = map.clusterMap()!;
    expect(cm.nodes.map((n) => n.id)).toEqual(NODES);
    expect(cm.epoch).toBe(1 + NODES.length);
    const pg = map.pgMap()!;
    expect(pg.epoch).toBe(cm.epoch);
    expect(pg.rules.pgCount).toBe(64);
    expect(pg.slots.length).toBe(64 * 3);
    // Heartbeat-driven mark-down: only when the node was not seen after silentSinceMs.
    const stale = await d.run({ op: 'mark-node-down', id: 'sn-2', silentSinceMs: d.nowMs - 1 }, 0);
    expect(stale).toMatchObject({ ok: true, changed: false, epoch: cm.epoch });
    const down = await d.run({ op: 'mark-node-down', id: 'sn-2', silentSinceMs: d.nowMs }, 0);
    expect(down).toMatchObject({ ok: true, changed: true, epoch: cm.epoch + 1, pgMapEpoch: cm.epoch + 1 });
    const pg2 = map.pgMap()!;
    expect(pg2.nodes.map((n) => n.id)).not.toContain('sn-2');
    for (let p = 0; p < 64; p++) expect(pgNodesOf(pg2, p)).not.toContain('sn-2');
    // A node coming back re-registers and is up again.
    d.nowMs += 10;
    const back = await d.run({ op: 'register-node', id: 'sn-2', address: '127.0.0.1:7402', domain: 'host-2', weight: 1 }, 0);
    expect(back).toMatchObject({ ok: true, changed: true, epoch: cm.epoch + 2 });
    expect(map.clusterMap()!.nodes.find((n) => n.id === 'sn-2')).toMatchObject({ state: 'up', lastHeartbeatMs: d.nowMs });
    // Re-registering unchanged records the heartbeat without a new epoch.
    d.nowMs += 10;
    expect(await d.run({ op: 'register-node', id: 'sn-2', address: '127.0.0.1:7402', domain: 'host-2', weight: 1 }, 0)).toMatchObject({ changed: false, epoch: cm.epoch + 2 });
    // Out is final.
    ok(await d.run({ op: 'set-node-state', id: 'sn-5', state: 'out' }, 0));
    await d.fail({ op: 'register-node', id: 'sn-5', address: '127.0.0.1:7405', domain: 'host-5', weight: 1 }, 'TW_BLOCKMAP_NODE_REMOVED', 0);
    await d.fail({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a', 1, ['sn-5', 'sn-0', 'sn-1'])] }, 'TW_BLOCKMAP_UNKNOWN_NODE');
    // Too few nodes for a stripe: the cluster map moves, the PG map stays at its last epoch.
    ok(await d.run({ op: 'set-node-state', id: 'sn-4', state: 'down' }, 0));
    ok(await d.run({ op: 'set-node-state', id: 'sn-3', state: 'draining' }, 0));
    const pgBefore = map.pgMap()!.epoch;
    const r = await d.run({ op: 'set-node-state', id: 'sn-1', state: 'down' }, 0);
    expect(r).toMatchObject({ ok: true, changed: true, pgMapEpoch: pgBefore });
    expect(map.clusterMap()!.epoch).toBeGreaterThan(pgBefore);
  });

  it('reopens from its store with the same state', async () => {
    const { d, map, h } = await fresh();
    ok(await d.run({ op: 'commit-blocks', namespace: 'ns', blocks: [block('a'), block('b')] }, 4));
    const reopened = await openBlockMap(h.store);
    expect(reopened.appliedIndex).toBe(map.appliedIndex);
    expect(await reopened.stateDigest()).toBe(await map.stateDigest());
    expect(reopened.namespaces()).toEqual(map.namespaces());
    expect(reopened.clusterMap()).toEqual(map.clusterMap());
    expect(reopened.pgMap()?.slots).toEqual(map.pgMap()?.slots);
    expect(await reopened.lookupPrefix('ns', [enc('a'), enc('b')])).toEqual(await map.lookupPrefix('ns', [enc('a'), enc('b')]));
  });
});

describe('initialisation', () => {
  it('refuses block and node commands before InitCluster, and bad rules', async () => {
    const d = await Driver.open((await STORES[0]![1]()).store);
    await d.fail({ op: 'register-node', id: 'a', address: 'x:1', domain: 'h', weight: 1 }, 'TW_BLOCKMAP_CLUSTER_NOT_INITIALIZED');
    await d.fail({ op: 'init-cluster', rules: { pgCount: 0, domainLevels: ['host'], redundancy: { kind: 'none' }, failureDomain: 'host', domainCapMax: 0 } }, 'TW_BLOCKMAP_BAD_CLUSTER_RULES');
    await d.fail({ op: 'init-cluster', rules: { pgCount: 8, domainLevels: ['host'], redundancy: { kind: 'none' }, failureDomain: 'rack', domainCapMax: 0 } }, 'TW_BLOCKMAP_BAD_CLUSTER_RULES');
    await d.fail({ op: 'init-cluster', rules: { pgCount: 8, domainLevels: ['Host!'], redundancy: { kind: 'none' }, failureDomain: 'Host!', domainCapMax: 0 } }, 'TW_BLOCKMAP_BAD_CLUSTER_RULES');
    expect(d.map.clusterMap()).toBeNull();
    expect(d.map.pgMap()).toBeNull();
  });
});

describe('writer-chosen fragment versions', () => {
  it('a commit keeps the version its writer stored the fragments under, and returns it when superseded', async () => {
    const { memoryKvStore } = await import('../src/index.js');
    const map = await openBlockMap(memoryKvStore());
    let index = 0;
    const run = async (command: Parameters<typeof encodeCommand>[0]['command']) => (await map.apply(++index, encodeCommand({ clientId: 0, seq: 0, nowMs: 1000, command }))).result;
    await run({ op: 'init-cluster', rules: { pgCount: 8, domainLevels: ['host'], redundancy: { kind: 'replicate', n: 1 }, failureDomain: 'host', domainCapMax: 0 } });
    await run({ op: 'register-node', id: 'sn-0', address: '127.0.0.1:1', domain: 'h0', weight: 1 });
    await run({ op: 'create-namespace', name: 'ns', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'replicate', n: 1 }, tokenHash: new Uint8Array(0) });
    const big = (1n << 63n) + 5n;
    const key = new TextEncoder().encode('k');
    await run({ op: 'commit-blocks', namespace: 'ns', blocks: [{ key, sizeBytes: 1, checksum: 1n, fragmentNodes: ['sn-0'], writeVersion: big }] });
    expect((await map.getBlock('ns', key))?.writeVersion).toBe(big);
    const second = await run({ op: 'commit-blocks', namespace: 'ns', blocks: [{ key, sizeBytes: 1, checksum: 2n, fragmentNodes: ['sn-0'], writeVersion: big + 1n }] });
    expect(second).toMatchObject({ ok: true, superseded: [{ writeVersion: big }] });
    expect((await map.lookupPrefix('ns', [key])).records[0]?.writeVersion).toBe(big + 1n);
  });
});
