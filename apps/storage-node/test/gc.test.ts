/**
 * Fragment garbage collection against a real coordinator (in-process: gRPC on loopback, LevelDB,
 * Raft): orphans, superseded, purged and misplaced fragments older than the grace period are
 * deleted, live and young ones kept; a commit landing within the grace period is never undone;
 * a changed cluster incarnation stops the sweep. The storage node's clock is injected.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, test } from 'vitest';
import { checksum64, keyHash64, type FragmentHeader } from '@tw/block-format';
import { parseConfig } from '@tw/config';
import { CoordinatorConfigSchema, type CoordinatorConfig, startCoordinator } from '@tw/coordinator';
import { FragmentClient, encodeFragmentId, type FragmentId } from '@tw/fragment-protocol';
import { createLogger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';
import { tcpTransport } from '@tw/transport-tcp';
import { StorageNodeConfigSchema, startStorageNode, type RunningStorageNode, type StorageNodeConfig } from '../src/index.js';

const quiet = createLogger({ role: 'test', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GRACE_MS = 600_000;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.unshift(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > 20_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface World {
  node: RunningStorageNode;
  dataDir: string;
  fragments: FragmentClient;
  client: CoordinatorClient;
  clock: { now: number };
  put(key: string, version: bigint, index: number): Promise<FragmentId>;
  commit(key: string, version: bigint, nodes: string[]): Promise<void>;
  has(id: FragmentId): Promise<boolean>;
}

/** One coordinator (ec:2+1), storage node `sn-a` in-process with a fake clock, and a registered stand-in `sn-b`. */
async function world(): Promise<World> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const coordinator = await startCoordinator(
    parseConfig(CoordinatorConfigSchema, { id: 1, dataDir: tempDir('tw-gc-coord-'), listen: { port }, admin: { port: 0 }, peers: [{ id: 1, address }], tickMs: 20, pgCount: 16, redundancy: 'ec:2+1', purgeGraceMs: 0, nodeTimeoutMs: 600_000 }) as CoordinatorConfig,
    quiet,
  );
  cleanups.push(() => coordinator.stop());
  const client = new CoordinatorClient([address], { attemptsMax: 40, backoffMs: 20, backoffMaxMs: 200 });
  cleanups.push(() => client.close());
  const clock = { now: 1_000_000_000 };
  const dataDir = tempDir('tw-gc-sn-');
  const config = parseConfig(StorageNodeConfigSchema, {
    nodeId: 'sn-a',
    dataDir,
    listen: { port: 0 },
    admin: { port: 0 },
    extentSizeBytes: 4 * 1024 * 1024,
    reserveBytes: 0,
    fragmentBytesMax: 1024 * 1024,
    coordinators: [address],
    heartbeatIntervalMs: 100,
    gc: { graceMs: GRACE_MS, intervalMs: 3_600_000, batchSize: 3, busyRequestsPerSecond: 0 },
  }) as StorageNodeConfig;
  const node = await startStorageNode(config, { logger: quiet, nowMs: () => clock.now });
  cleanups.push(() => node.stop());
  await client.call('registerNode', {
    node: { nodeId: 'sn-b', dataAddress: '127.0.0.1:1', adminUrl: '', failureDomain: ['host-b'], weight: 1, state: 'up', capacityBytes: '0', usedBytes: '0' },
    requestId: { clientId: 'gc-test', seq: '1' },
  });
  await until('sn-a registered', async () => (await client.call('checkFragments', { nodeId: 'sn-a', fragments: [] })).nodeRegisteredAtMs !== '0');
  const t = tcpTransport()({});
  cleanups.push(() => t.close());
  const fragments = new FragmentClient(await t.dial(node.dataAddress));
  let seq = 100;
  return {
    node,
    dataDir,
    fragments,
    client,
    clock,
    async put(key, version, index) {
      const bytes = Buffer.alloc(64, 0x20);
      bytes.write(`fragment ${key} v${version} #${index}`);
      const id: FragmentId = { namespace: 'default', key: Buffer.from(key), version, index };
      const header: FragmentHeader = {
        redundancy: { kind: 'ec', k: 2, m: 1 },
        fragmentIndex: index,
        fragmentLength: bytes.length,
        keyHash: keyHash64('default', Buffer.from(key)),
        blockVersion: version,
        payloadLength: 128,
        fragmentChecksum: checksum64(bytes),
      };
      await fragments.put(id, header, bytes);
      return id;
    },
    async commit(key, version, nodes) {
      const res = await client.call('commitBlocks', {
        namespace: 'default',
        blocks: [{ key: Buffer.from(key), sizeBytes: '10', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: nodes, layout: null, ttlMs: '0', pinned: false, version: String(version) }],
        requestId: { clientId: 'gc-test', seq: String(++seq) },
        token: '',
      });
      expect(res.results[0]!.errorCode).toBe('');
    },
    async has(id) {
      return (await node.store.stat(encodeFragmentId(id))) !== undefined;
    },
  };
}

test('orphans, superseded, purged and misplaced fragments past the grace period go; live and young ones stay', async () => {
  const w = await world();
  // Committed, sn-a holds indexes 0 and 2; index 1 belongs to sn-b (a stale copy here).
  const live0 = await w.put('live', 10n, 0);
  const live2 = await w.put('live', 10n, 2);
  const misplaced = await w.put('live', 10n, 1);
  await w.commit('live', 10n, ['sn-a', 'sn-b', 'sn-a']);
  // Never committed.
  const orphan = await w.put('orphan', 20n, 0);
  // Superseded by a newer PUT, then purged.
  const old = await w.put('sup', 30n, 0);
  await w.commit('sup', 30n, ['sn-a', 'sn-b', 'sn-b']);
  const fresh = await w.put('sup', 31n, 0);
  await w.commit('sup', 31n, ['sn-a', 'sn-b', 'sn-b']);
  // Deleted, then purged.
  const deleted = await w.put('del', 40n, 0);
  await w.commit('del', 40n, ['sn-a', 'sn-b', 'sn-b']);
  await w.client.call('deleteBlocks', { namespace: 'default', keys: [Buffer.from('del')], requestId: { clientId: 'gc-test', seq: '50' }, token: '' });
  // The coordinator purges (purgeGraceMs 0) on its next housekeeping pass.
  const ask = [old, deleted].map((f) => ({ namespace: f.namespace, key: Buffer.from(f.key), version: String(f.version), index: f.index }));
  await until('purge', async () => (await w.client.call('checkFragments', { nodeId: 'sn-a', fragments: ask })).liveness.every((l) => l === 'FRAGMENT_LIVENESS_DEAD'));

  // Everything so far is `written by now`; then a young orphan.
  w.node.gc!.sample();
  const young = await w.put('young', 60n, 0);

  // Before the grace period: nothing is even checked.
  w.clock.now += GRACE_MS - 1;
  const early = await w.node.gc!.runOnce();
  expect(early).toMatchObject({ checked: 0, deleted: 0 });

  w.clock.now += 2;
  const pass = await w.node.gc!.runOnce();
  expect(pass.aborted).toBeUndefined();
  expect(pass).toMatchObject({ scanned: 8, young: 1, checked: 7, live: 3, dead: 4, unknown: 0, deleted: 4 });
  for (const f of [live0, live2, fresh, young]) expect(await w.has(f), `${Buffer.from(f.key).toString()} v${f.version} #${f.index}`).toBe(true);
  for (const f of [misplaced, orphan, old, deleted]) expect(await w.has(f), `${Buffer.from(f.key).toString()} v${f.version} #${f.index}`).toBe(false);
  // The live ones still read back.
  expect((await w.fragments.get(live0))?.bytes.toString().trimEnd()).toBe('fragment live v10 #0');

  const metrics = await (await fetch(`${w.node.adminUrl}/metrics`)).text();
  expect(metrics).toMatch(/tw_storage_gc_fragments_total\{outcome="deleted"\} 4/);
  expect(metrics).toMatch(/tw_storage_gc_passes_total\{result="ok"\} 2/);
  expect(JSON.parse(readFileSync(join(w.dataDir, 'gc-identity.json'), 'utf8'))).toMatchObject({ nodeId: 'sn-a' });
});

test('a commit that lands within the grace period is never undone by a sweep', async () => {
  const w = await world();
  const racing = [await w.put('race', 70n, 0), await w.put('race', 70n, 2)];
  const orphan = await w.put('race-orphan', 71n, 0);
  w.node.gc!.sample();
  // The gateway is slow: it commits just before the grace period ends.
  w.clock.now += GRACE_MS - 1;
  expect((await w.node.gc!.runOnce()).checked).toBe(0);
  await w.commit('race', 70n, ['sn-a', 'sn-b', 'sn-a']);
  w.clock.now += 2;
  const pass = await w.node.gc!.runOnce();
  expect(pass).toMatchObject({ checked: 3, live: 2, dead: 1, deleted: 1 });
  for (const f of racing) expect(await w.has(f)).toBe(true);
  expect(await w.has(orphan)).toBe(false);
});

test('a different cluster incarnation (coordinators rebuilt, node id reused) stops the sweep before any delete', async () => {
  const w = await world();
  const orphan = await w.put('orphan', 80n, 0);
  w.node.gc!.sample();
  w.clock.now += GRACE_MS + 1;
  // The node remembers another registration than the one the coordinators report.
  writeFileSync(join(w.dataDir, 'gc-identity.json'), JSON.stringify({ nodeId: 'sn-a', registeredAtMs: 12345 }));
  const pass = await w.node.gc!.runOnce();
  expect(pass.aborted).toMatch(/disabled/);
  expect(pass.deleted).toBe(0);
  expect(await w.has(orphan)).toBe(true);
  expect(w.node.gc!.disabled).toBeDefined();
  const again = await w.node.gc!.runOnce();
  expect(again).toMatchObject({ scanned: 0, deleted: 0 });
  expect(await w.has(orphan)).toBe(true);
});
