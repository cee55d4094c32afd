/** Three coordinators in one process over real gRPC on loopback, real LevelDB, real Raft. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { parseConfig } from '@tw/config';
import { createLogger } from '@tw/observability';
import { CoordinatorClient, decodeWireRecords, decodeWireVersions, encodeWireCommits, encodeWireKeys } from '@tw/rpc';
import { type CoordinatorConfig, CoordinatorConfigSchema, type RunningCoordinator, startCoordinator } from '../src/index.js';
import { freePort } from '@tw/testkit';

const quiet = createLogger({ role: 'coordinator', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


async function group(n: number, extra: Record<string, unknown> = {}): Promise<{ coordinators: (RunningCoordinator | undefined)[]; configs: CoordinatorConfig[]; client: CoordinatorClient }> {
  const ports = await Promise.all(Array.from({ length: n }, freePort));
  const peers = ports.map((p, i) => ({ id: i + 1, address: `127.0.0.1:${p}` }));
  const configs = peers.map((p) => {
    const dir = mkdtempSync(join(tmpdir(), `tw-coord-${p.id}-`));
    cleanups.unshift(() => rmSync(dir, { recursive: true, force: true }));
    return parseConfig(CoordinatorConfigSchema, {
      id: p.id,
      dataDir: dir,
      listen: { port: Number(p.address.split(':')[1]) },
      admin: { port: 0 },
      peers,
      tickMs: 20,
      pgCount: 64,
      redundancy: 'ec:2+1',
      nodeTimeoutMs: 60_000,
      ...extra,
    }) as CoordinatorConfig;
  });
  const coordinators: (RunningCoordinator | undefined)[] = [];
  for (const c of configs) {
    const running = await startCoordinator(c, quiet);
    coordinators.push(running);
  }
  cleanups.push(async () => {
    for (const c of coordinators) await c?.stop();
  });
  const client = new CoordinatorClient(peers.map((p) => p.address), { attemptsMax: 40, backoffMs: 20, backoffMaxMs: 200 });
  cleanups.push(() => client.close());
  return { coordinators, configs, client };
}

const rid = (seq: number) => ({ clientId: 'test-client', seq: String(seq) });

async function cacheEntries(c: RunningCoordinator): Promise<number> {
  const text = await (await fetch(`${c.adminUrl}/metrics`)).text();
  const m = /^tw_coordinator_block_cache_entries (\d+)$/m.exec(text);
  if (m === null) throw new Error('no tw_coordinator_block_cache_entries in /metrics');
  return Number(m[1]);
}

/** Waits (bounded) until every running coordinator has applied what the leader has committed. */
async function allApplied(coordinators: readonly (RunningCoordinator | undefined)[]): Promise<void> {
  const leader = coordinators.find((c) => c?.raft.isLeader);
  if (leader === undefined) throw new Error('no leader');
  const target = leader.raft.commitIndex;
  const deadline = Date.now() + 10_000;
  while (!coordinators.every((c) => c === undefined || c.raft.appliedIndex >= target)) {
    if (Date.now() > deadline) throw new Error(`not every coordinator applied index ${target} within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function registerNodes(client: CoordinatorClient, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await client.call('registerNode', {
      node: { nodeId: `sn-${i}`, dataAddress: `127.0.0.1:${7500 + i}`, adminUrl: '', failureDomain: [`host-${i}`], weight: 1, state: 'up', capacityBytes: '0', usedBytes: '0' },
      requestId: rid(1000 + i),
    });
  }
}

describe('coordinator config', () => {
  test('levelDbWriteBufferBytes defaults to 16 MiB and refuses a size below 1 MiB, naming the field', () => {
    const base = { id: 1, dataDir: '/tmp/unused', peers: [{ id: 1, address: '127.0.0.1:7401' }] };
    expect((parseConfig(CoordinatorConfigSchema, base) as CoordinatorConfig).levelDbWriteBufferBytes).toBe(16 * 1024 * 1024);
    expect(() => parseConfig(CoordinatorConfigSchema, { ...base, levelDbWriteBufferBytes: 1000 })).toThrow(/levelDbWriteBufferBytes/);
  });
});

describe('coordinator group', () => {
  test('initialises the cluster, registers nodes, commits and looks up blocks through whichever coordinator leads', async () => {
    const { client } = await group(3);
    await registerNodes(client, 3);
    const keys = Array.from({ length: 10 }, (_, i) => Buffer.from(`prompt-a/chunk-${i}`));
    const commit = await client.call('commitBlocks', {
      namespace: 'default',
      blocks: keys.slice(0, 6).map((key) => ({ key, sizeBytes: '1048576', checksum: '12345', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: '0' })),
      requestId: rid(1),
      token: '',
    });
    expect(commit.results).toHaveLength(6);
    // A retry of the same request id is answered with the same versions, not applied twice.
    const again = await client.call('commitBlocks', {
      namespace: 'default',
      blocks: keys.slice(0, 6).map((key) => ({ key, sizeBytes: '1048576', checksum: '12345', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: '0' })),
      requestId: rid(1),
      token: '',
    });
    expect(again.results.map((r) => r.version)).toEqual(commit.results.map((r) => r.version));
    const lookup = await client.call('lookupPrefix', { namespace: 'default', keys, token: '', includeRecords: true });
    expect(lookup.hits).toBe(6);
    expect(lookup.records[5]!.fragmentNodes).toEqual(['sn-0', 'sn-1', 'sn-2']);
    await client.call('deleteBlocks', { namespace: 'default', keys: [keys[2]!], requestId: rid(2), token: '' });
    expect((await client.call('lookupPrefix', { namespace: 'default', keys, token: '', includeRecords: false })).hits).toBe(2);
    // The writer's 64-bit version (the fragments' names) survives the commit and comes back from lookups.
    const writerVersion = String((1n << 63n) + 5n);
    const w = await client.call('commitBlocks', {
      namespace: 'default',
      blocks: [{ key: Buffer.from('writer-version'), sizeBytes: '1', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: writerVersion }],
      requestId: rid(3),
      token: '',
    });
    expect(w.results[0]!.version).toBe(writerVersion);
    const wl = await client.call('lookupPrefix', { namespace: 'default', keys: [Buffer.from('writer-version')], token: '', includeRecords: true });
    expect(wl.records[0]!.version).toBe(writerVersion);
    expect(Number(wl.records[0]!.mapVersion)).toBeGreaterThan(0);
    const ns = await client.call('listNamespaces', { adminToken: '' });
    expect(ns.namespaces.map((n) => n.name)).toContain('default');
  });

  test('packed commits and lookups carry the same records as the message forms', async () => {
    const { client } = await group(1);
    await registerNodes(client, 3);
    const keys = Array.from({ length: 5 }, (_, i) => Buffer.from(`packed/chunk-${i}`));
    const layout = { modelId: 'llama', dtypeCode: 3, memoryFormatCode: 1, layers: 32, tokens: 256, kvHeads: 8, headDim: 128 };
    const blocks = keys.slice(0, 4).map((key, i) => ({ key, sizeBytes: 1000 + i, checksum: (1n << 63n) + BigInt(i), redundancy: i === 0 ? 'ec:2+1' : '', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: i === 1 ? layout : null, ttlMs: i === 2 ? 60_000 : 0, pinned: i === 3, version: i === 3 ? 77n : 0n }));
    const res = await client.call('commitBlocks', { namespace: 'default', blocks: [], packedBlocks: encodeWireCommits(blocks), requestId: rid(1), token: '' });
    expect(res.results).toEqual([]);
    const versions = decodeWireVersions(res.packedVersions!);
    expect(versions).toHaveLength(4);
    expect(versions[3]).toBe(77n);
    // A retry is answered from the remembered result.
    const again = await client.call('commitBlocks', { namespace: 'default', blocks: [], packedBlocks: encodeWireCommits(blocks), requestId: rid(1), token: '' });
    expect(decodeWireVersions(again.packedVersions!)).toEqual(versions);
    const packed = await client.call('lookupPrefix', { namespace: 'default', keys, token: '', includeRecords: true, packed: true });
    const plain = await client.call('lookupPrefix', { namespace: 'default', keys, token: '', includeRecords: true });
    expect(packed.hits).toBe(4);
    expect(packed.records).toEqual([]);
    const wire = decodeWireRecords(packed.packedRecords!);
    expect(wire.map((r) => ({
      key: Buffer.from(r.key).toString(), version: r.version.toString(), mapVersion: String(r.mapVersion), sizeBytes: String(r.sizeBytes), checksum: r.checksum.toString(),
      redundancy: r.redundancy, fragmentNodes: r.fragmentNodes, state: r.state === 'committed' ? 'BLOCK_STATE_COMMITTED' : 'BLOCK_STATE_DELETING', createdAtMs: String(r.createdAtMs),
      lastAccessMs: String(r.lastAccessMs), ttlMs: String(r.ttlMs), pinned: r.pinned, layout: r.layout,
    }))).toEqual(plain.records.map(({ namespace: _ns, pg: _pg, key, ...rest }) => ({ ...rest, key: key.toString() })));
    expect(wire[3]!.version).toBe(77n);
    expect(wire[1]!.layout).toEqual(layout);
    await expect(client.call('commitBlocks', { namespace: 'default', blocks: [], packedBlocks: Buffer.from([1, 2, 3]), requestId: rid(2), token: '' })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });

    // Packed keys: the same answer, byte for byte, as the keys sent as messages (old clients).
    const byPackedKeys = await client.call('lookupPrefix', { namespace: 'default', keys: [], packedKeys: encodeWireKeys(keys), token: '', includeRecords: true, packed: true });
    expect(byPackedKeys.hits).toBe(4);
    expect(byPackedKeys.keysRead).toBe(5);
    expect(packed.keysRead).toBe(5);
    expect(plain.keysRead).toBe(5);
    expect(byPackedKeys.packedRecords!.equals(packed.packedRecords!)).toBe(true);
    // Mixed hits: the prefix stops at the first key not committed (here the second).
    const mixed = [keys[0]!, Buffer.from('packed/never'), keys[1]!, keys[2]!];
    for (const form of [{ keys: [], packedKeys: encodeWireKeys(mixed) }, { keys: mixed }]) {
      const r = await client.call('lookupPrefix', { namespace: 'default', ...form, token: '', includeRecords: true, packed: true });
      expect(r.hits).toBe(1);
      expect(decodeWireRecords(r.packedRecords!).map((x) => Buffer.from(x.key).toString())).toEqual(['packed/chunk-0']);
      const counted = await client.call('lookupPrefix', { namespace: 'default', ...form, token: '', includeRecords: false });
      expect([counted.hits, counted.records.length, counted.packedRecords?.length ?? 0]).toEqual([1, 0, 0]);
    }
    expect((await client.call('lookupPrefix', { namespace: 'default', keys: [], packedKeys: encodeWireKeys(keys.slice(1)), token: '', includeRecords: true, packed: true })).hits).toBe(3);
    await expect(client.call('lookupPrefix', { namespace: 'default', keys, packedKeys: encodeWireKeys(keys), token: '', includeRecords: true, packed: true })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
    await expect(client.call('lookupPrefix', { namespace: 'default', keys: [], packedKeys: encodeWireKeys(keys).subarray(0, 9), token: '', includeRecords: true })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
    const tooMany = Array.from({ length: 4097 }, (_, i) => Buffer.from(`k${i}`));
    await expect(client.call('lookupPrefix', { namespace: 'default', keys: [], packedKeys: encodeWireKeys(tooMany), token: '', includeRecords: true })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
  });

  test('concurrent packed lookups each get their own records (the answer and stored-record buffers are reused)', async () => {
    const { client } = await group(3);
    await registerNodes(client, 3);
    const keys = Array.from({ length: 600 }, (_, i) => Buffer.from(`concurrent/${i}`));
    for (let at = 0; at < keys.length; at += 200) {
      const blocks = keys.slice(at, at + 200).map((key, i) => ({ key, sizeBytes: at + i, checksum: BigInt(at + i), redundancy: '', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: 0, pinned: false, version: 0n }));
      await client.call('commitBlocks', { namespace: 'default', blocks: [], packedBlocks: encodeWireCommits(blocks), requestId: rid(700 + at), token: '' });
    }
    // Windows of different lengths (so answers of different sizes) in flight at once, twice over.
    const windows = Array.from({ length: 40 }, (_, i) => ({ from: (i * 37) % 400, n: 20 + ((i * 53) % 180) }));
    const answers = await Promise.all(
      windows.map(({ from, n }) => client.call('lookupPrefix', { namespace: 'default', keys: [], packedKeys: encodeWireKeys(keys.slice(from, from + n)), token: '', includeRecords: true, packed: true })),
    );
    for (const [i, { from, n }] of windows.entries()) {
      expect(answers[i]!.hits).toBe(n);
      const records = decodeWireRecords(answers[i]!.packedRecords!);
      expect(records.map((r) => Buffer.from(r.key).toString())).toEqual(keys.slice(from, from + n).map((k) => k.toString()));
      expect(records.map((r) => Number(r.sizeBytes))).toEqual(Array.from({ length: n }, (_, j) => from + j));
    }
  });

  test('with lease reads, lookups on the leader see every acknowledged commit', async () => {
    const { client } = await group(3, { leaseReads: true });
    await registerNodes(client, 3);
    for (let i = 0; i < 5; i++) {
      const key = Buffer.from(`lease/${i}`);
      await client.call('commitBlocks', { namespace: 'default', blocks: [{ key, sizeBytes: '10', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: '0' }], requestId: rid(500 + i), token: '' });
      expect((await client.call('lookupPrefix', { namespace: 'default', keys: [key], token: '', includeRecords: false })).hits).toBe(1);
    }
  });

  test('bad input gets coded errors', async () => {
    const { client } = await group(1);
    await registerNodes(client, 3);
    await expect(client.call('commitBlocks', { namespace: 'nope', blocks: [], requestId: rid(1), token: '' })).rejects.toMatchObject({ code: 'TW_BLOCKMAP_UNKNOWN_NAMESPACE' });
    await expect(
      client.call('commitBlocks', {
        namespace: 'default',
        blocks: [{ key: Buffer.alloc(600), sizeBytes: '1', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: '0' }],
        requestId: rid(2),
        token: '',
      }),
    ).rejects.toMatchObject({ code: 'TW_BLOCKMAP_BAD_KEY' });
    await expect(client.call('commitBlocks', { namespace: 'default', blocks: [{ key: Buffer.from('k'), sizeBytes: '1', checksum: '1', redundancy: 'raid5', fragmentNodes: [], layout: null, ttlMs: '0', pinned: false, version: '0' }], requestId: rid(3), token: '' })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
    await expect(client.call('createNamespace', { namespace: { name: 'Bad Name', quotaBytes: '0', defaultTtlMs: '0', redundancy: '', usedBytes: '0', blockCount: '0' }, token: '', requestId: rid(4), adminToken: '' })).rejects.toMatchObject({ code: 'TW_BLOCKMAP_BAD_NAMESPACE' });
  });

  test('a namespace with a token refuses requests without it', async () => {
    const { client } = await group(1);
    await registerNodes(client, 3);
    await client.call('createNamespace', { namespace: { name: 'tenant-a', quotaBytes: '0', defaultTtlMs: '0', redundancy: 'ec:2+1', usedBytes: '0', blockCount: '0' }, token: 's3cret-token', requestId: rid(1), adminToken: '' });
    await expect(client.call('lookupPrefix', { namespace: 'tenant-a', keys: [Buffer.from('k')], token: 'wrong', includeRecords: false })).rejects.toMatchObject({ code: 'TW_COORD_FORBIDDEN' });
    expect((await client.call('lookupPrefix', { namespace: 'tenant-a', keys: [Buffer.from('k')], token: 's3cret-token', includeRecords: false })).hits).toBe(0);
    // VerifyNamespaceToken: what gateways ask before letting an engine in.
    expect(await client.call('verifyNamespaceToken', { namespace: 'tenant-a', token: 's3cret-token' })).toEqual({ known: true, hasToken: true, valid: true });
    expect(await client.call('verifyNamespaceToken', { namespace: 'tenant-a', token: 's3cret-tokeN' })).toEqual({ known: true, hasToken: true, valid: false });
    expect(await client.call('verifyNamespaceToken', { namespace: 'tenant-a', token: '' })).toEqual({ known: true, hasToken: true, valid: false });
    expect(await client.call('verifyNamespaceToken', { namespace: 'default', token: 'anything' })).toEqual({ known: true, hasToken: false, valid: false });
    expect(await client.call('verifyNamespaceToken', { namespace: 'no-such-ns', token: 's3cret-token' })).toEqual({ known: false, hasToken: false, valid: false });
    await expect(client.call('verifyNamespaceToken', { namespace: '', token: 'x' })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
  });

  test('the leader stops; another takes over and no acknowledged commit is lost', async () => {
    const { coordinators, client } = await group(3);
    await registerNodes(client, 3);
    const committed: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const key = Buffer.from(`before-${i}`);
      await client.call('commitBlocks', { namespace: 'default', blocks: [{ key, sizeBytes: '10', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: '0' }], requestId: rid(10 + i), token: '' });
      committed.push(key);
    }
    const leaderIndex = coordinators.findIndex((c) => c?.raft.isLeader);
    expect(leaderIndex).toBeGreaterThanOrEqual(0);
    // Written records enter the lookup cache on the leader only; followers apply them uncached.
    await allApplied(coordinators);
    for (const [i, c] of coordinators.entries()) {
      if (i === leaderIndex) expect(await cacheEntries(c!)).toBeGreaterThanOrEqual(20);
      else expect(await cacheEntries(c!)).toBe(0);
    }
    await coordinators[leaderIndex]!.stop();
    coordinators[leaderIndex] = undefined;
    for (let i = 0; i < 20; i++) {
      const key = Buffer.from(`after-${i}`);
      await client.call('commitBlocks', { namespace: 'default', blocks: [{ key, sizeBytes: '10', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: ['sn-0', 'sn-1', 'sn-2'], layout: null, ttlMs: '0', pinned: false, version: '0' }], requestId: rid(100 + i), token: '' });
      committed.push(key);
    }
    // The new leader enters what it commits from now on.
    const next = coordinators.find((c) => c?.raft.isLeader);
    expect(next).toBeDefined();
    expect(await cacheEntries(next!)).toBeGreaterThanOrEqual(20);
    for (const key of committed) {
      expect((await client.call('lookupPrefix', { namespace: 'default', keys: [key], token: '', includeRecords: false })).hits).toBe(1);
    }
  });

  test('cluster-map watchers see each new epoch', async () => {
    const { client } = await group(1);
    const epochs: number[] = [];
    const stop = client.watchClusterMap((m) => epochs.push(Number(m.epoch)));
    cleanups.push(stop);
    await registerNodes(client, 3);
    const t0 = Date.now();
    while (epochs.length === 0 || epochs[epochs.length - 1]! < 4) {
      if (Date.now() - t0 > 10_000) throw new Error(`epochs seen: ${epochs.join(',')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect([...epochs].sort((a, b) => a - b)).toEqual(epochs);
  });
});
