/**
 * CheckFragments (storage-node garbage collection) and ReportBadFragments (gateway read path)
 * through a real coordinator group: gRPC on loopback, LevelDB, Raft.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, expect, test } from 'vitest';
import { parseConfig } from '@tw/config';
import { createLogger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';
import { type CoordinatorConfig, CoordinatorConfigSchema, type RunningCoordinator, startCoordinator } from '../src/index.js';
import { freePort } from '@tw/testkit';

const quiet = createLogger({ role: 'coordinator', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


async function group(n: number, extra: Record<string, unknown> = {}): Promise<{ coordinators: RunningCoordinator[]; client: CoordinatorClient; addresses: string[] }> {
  const ports = await Promise.all(Array.from({ length: n }, freePort));
  const peers = ports.map((p, i) => ({ id: i + 1, address: `127.0.0.1:${p}` }));
  const coordinators: RunningCoordinator[] = [];
  cleanups.push(async () => {
    for (const c of coordinators) await c.stop();
  });
  for (const p of peers) {
    const dir = mkdtempSync(join(tmpdir(), `tw-coord-frag-${p.id}-`));
    cleanups.unshift(() => rmSync(dir, { recursive: true, force: true }));
    const config = parseConfig(CoordinatorConfigSchema, { id: p.id, dataDir: dir, listen: { port: Number(p.address.split(':')[1]) }, admin: { port: 0 }, peers, tickMs: 20, pgCount: 64, redundancy: 'ec:2+1', nodeTimeoutMs: 60_000, ...extra }) as CoordinatorConfig;
    coordinators.push(await startCoordinator(config, quiet));
  }
  const client = new CoordinatorClient(peers.map((p) => p.address), { attemptsMax: 40, backoffMs: 20, backoffMaxMs: 200 });
  cleanups.push(() => client.close());
  return { coordinators, client, addresses: peers.map((p) => p.address) };
}

const rid = (seq: number) => ({ clientId: 'fragments-test', seq: String(seq) });
const NODES = ['sn-0', 'sn-1', 'sn-2', 'sn-3'];

async function registerNodes(client: CoordinatorClient): Promise<void> {
  for (let i = 0; i < NODES.length; i++) {
    await client.call('registerNode', {
      node: { nodeId: NODES[i]!, dataAddress: `127.0.0.1:${7600 + i}`, adminUrl: '', failureDomain: [`host-${i}`], weight: 1, state: 'up', capacityBytes: '0', usedBytes: '0' },
      requestId: rid(1000 + i),
    });
  }
}

const commit = (client: CoordinatorClient, key: string, version: bigint, nodes: string[], seq: number) =>
  client.call('commitBlocks', {
    namespace: 'default',
    blocks: [{ key: Buffer.from(key), sizeBytes: '10', checksum: '1', redundancy: 'ec:2+1', fragmentNodes: nodes, layout: null, ttlMs: '0', pinned: false, version: String(version) }],
    requestId: rid(seq),
    token: '',
  });

test('CheckFragments answers from the block map, on the leader and on a follower (ReadIndex)', async () => {
  const { coordinators, client, addresses } = await group(3);
  await registerNodes(client);
  const big = (1n << 63n) + 11n; // versions use all 64 bits
  await commit(client, 'a', big, ['sn-0', 'sn-1', 'sn-2'], 1);
  await commit(client, 'b', 5n, ['sn-0', 'sn-1', 'sn-2'], 2);
  await commit(client, 'b', 6n, ['sn-3', 'sn-1', 'sn-2'], 3); // supersedes b@5 (kept until purged)
  const frag = (key: string, version: bigint, index: number) => ({ namespace: 'default', key: Buffer.from(key), version: String(version), index });
  const ask = [frag('a', big, 0), frag('a', big, 1), frag('a', big + 1n, 0), frag('orphan', 9n, 0), frag('b', 5n, 0), frag('b', 6n, 0), frag('a', big, 0)];
  const res = await client.call('checkFragments', { nodeId: 'sn-0', fragments: ask });
  expect(res.liveness).toEqual(['FRAGMENT_LIVENESS_LIVE', 'FRAGMENT_LIVENESS_DEAD', 'FRAGMENT_LIVENESS_DEAD', 'FRAGMENT_LIVENESS_DEAD', 'FRAGMENT_LIVENESS_LIVE', 'FRAGMENT_LIVENESS_DEAD', 'FRAGMENT_LIVENESS_LIVE']);
  expect(Number(res.nodeRegisteredAtMs)).toBeGreaterThan(0);
  // A node the map does not know gets UNKNOWN for everything.
  const stranger = await client.call('checkFragments', { nodeId: 'sn-unknown', fragments: [frag('orphan', 9n, 0)] });
  expect(stranger).toMatchObject({ liveness: ['FRAGMENT_LIVENESS_UNKNOWN'], nodeRegisteredAtMs: '0' });
  // A follower answers too, after a ReadIndex round: it sees the commit just acknowledged.
  const follower = coordinators.findIndex((c) => !c.raft.isLeader);
  const direct = new CoordinatorClient([addresses[follower]!], { attemptsMax: 1 });
  cleanups.push(() => direct.close());
  await commit(client, 'c', 77n, ['sn-0', 'sn-1', 'sn-2'], 4);
  const viaFollower = await direct.call('checkFragments', { nodeId: 'sn-0', fragments: [frag('c', 77n, 0)] });
  expect(viaFollower.liveness).toEqual(['FRAGMENT_LIVENESS_LIVE']);
  await expect(client.call('checkFragments', { nodeId: 'sn-0', fragments: Array.from({ length: 1025 }, (_, i) => frag(`k${i}`, 1n, 0)) })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
});

test('ReportBadFragments: recorded on the leader, counted in /metrics, listed by the admin API', async () => {
  const { coordinators, client } = await group(1, { adminToken: 'admin-secret' });
  await registerNodes(client);
  const report = (reason: string, count: number) => ({ namespace: 'default', key: Buffer.from('blk'), version: '42', index: 1, nodeId: 'sn-1', reason, detail: 'TW_CHECKSUM_MISMATCH', seenAtMs: '1', count });
  expect((await client.call('reportBadFragments', { gatewayId: 'gw-1', reports: [report('missing', 2)], dropped: '0' })).accepted).toBe(1);
  await client.call('reportBadFragments', { gatewayId: 'gw-2', reports: [report('corrupt', 1)], dropped: '5' });
  const url = coordinators[0]!.adminUrl;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  expect(metrics).toMatch(/tw_coordinator_bad_fragment_reports_total\{reason="missing"\} 2/);
  expect(metrics).toMatch(/tw_coordinator_bad_fragment_reports_total\{reason="corrupt"\} 1/);
  expect(metrics).toMatch(/tw_coordinator_bad_fragments_tracked 1/);
  expect(metrics).toMatch(/tw_coordinator_bad_fragment_reports_dropped_total 5/);
  expect((await fetch(`${url}/v1/bad-fragments`)).status).toBe(401);
  const list = (await (await fetch(`${url}/v1/bad-fragments?limit=10`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as { fragments: { nodeId: string; count: number; reason: string; gateways: string[]; keyHex: string }[] };
  expect(list.fragments).toHaveLength(1);
  expect(list.fragments[0]).toMatchObject({ nodeId: 'sn-1', count: 3, reason: 'corrupt', gateways: ['gw-1', 'gw-2'], keyHex: Buffer.from('blk').toString('hex') });
  await expect(client.call('reportBadFragments', { gatewayId: 'gw', reports: [{ ...report('missing', 1), nodeId: '' }], dropped: '0' })).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
});
