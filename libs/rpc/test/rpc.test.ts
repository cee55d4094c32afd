import { afterEach, describe, expect, test } from 'vitest';
import { TwError, defineErrors } from '@tw/errors';
import {
  type ClusterMapMsg,
  type CoordinatorImpl,
  CoordinatorClient,
  RaftPeerClient,
  type RunningGrpcServer,
  type SnapshotChunkMsg,
  addCoordinatorService,
  addRaftPeerService,
  rpcErrors,
  startGrpcServer,
} from '../src/index.js';

const testErrors = defineErrors('@tw/rpc-test', {
  TW_TEST_UNKNOWN_NAMESPACE: { description: 'test' },
});

const servers: RunningGrpcServer[] = [];
const clients: { close(): void }[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

const notImplemented = async (): Promise<never> => {
  throw rpcErrors.create('TW_RPC_INTERNAL', 'not part of this test');
};

/** A coordinator stand-in that answers from a fixed role: the leader, or a follower with a hint. */
function fakeCoordinator(role: { leader: true } | { leader: false; hint: () => string }, calls: string[]): CoordinatorImpl {
  const guard = (): void => {
    if (!role.leader) throw rpcErrors.create('TW_NOT_LEADER', 'not the leader', { details: { leader: role.hint() } });
  };
  return {
    async lookupPrefix(req) {
      calls.push('lookupPrefix');
      guard();
      if (req.namespace === 'missing') throw testErrors.create('TW_TEST_UNKNOWN_NAMESPACE', `no namespace ${req.namespace}`, { details: { namespace: req.namespace } });
      return {
        hits: req.keys.length,
        records: req.keys.map((key, i) => ({
          namespace: req.namespace,
          key,
          version: String(2n ** 63n + BigInt(i)),
          sizeBytes: '33554432',
          checksum: '18446744073709551615',
          redundancy: 'ec:4+2',
          fragmentNodes: ['a', 'b', 'c', 'd', 'e', 'f'],
          state: 'BLOCK_STATE_COMMITTED',
          createdAtMs: '1',
          lastAccessMs: '2',
          ttlMs: '0',
          pinned: false,
          layout: null,
          pg: 7,
          mapVersion: '1',
        })),
        appliedIndex: '42',
      };
    },
    commitBlocks: notImplemented,
    deleteBlocks: notImplemented,
    registerNode: notImplemented,
    heartbeat: notImplemented,
    createNamespace: notImplemented,
    getNamespace: notImplemented,
    listNamespaces: notImplemented,
    deleteNamespace: notImplemented,
    async reportBadFragments(req) {
      calls.push('reportBadFragments');
      return { accepted: req.reports.length + Number(req.dropped) };
    },
    async checkFragments(req) {
      calls.push('checkFragments');
      const names = ['FRAGMENT_LIVENESS_UNKNOWN', 'FRAGMENT_LIVENESS_LIVE', 'FRAGMENT_LIVENESS_DEAD'] as const;
      return { liveness: req.fragments.map((f) => names[f.index % 3]!), appliedIndex: '7', nodeRegisteredAtMs: req.fragments[0]?.version ?? '0' };
    },
    async verifyNamespaceToken(req) {
      calls.push('verifyNamespaceToken');
      return { known: req.namespace !== 'nope', hasToken: req.namespace === 'locked', valid: req.namespace === 'locked' && req.token === 's3cret' };
    },
    async watchClusterMap(_req, push, ctx) {
      for (let epoch = 1; epoch <= 3 && !ctx.signal.aborted; epoch++) {
        await push({ epoch: String(epoch), nodes: [], pgCount: 4096, pgMap: Buffer.from([epoch]) });
      }
    },
  };
}

async function start(impl: CoordinatorImpl): Promise<RunningGrpcServer> {
  const s = await startGrpcServer('127.0.0.1:0', (server) => addCoordinatorService(server, impl));
  servers.push(s);
  return s;
}

describe('coordinator service over gRPC', () => {
  test('bytes keys and 64-bit fields survive the trip', async () => {
    const s = await start(fakeCoordinator({ leader: true }, []));
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    const key = Buffer.from([0, 255, 1, 2]);
    const res = await client.call('lookupPrefix', { namespace: 'default', keys: [key], token: '', includeRecords: true });
    expect(res.hits).toBe(1);
    expect(res.records[0]!.key.equals(key)).toBe(true);
    expect(res.records[0]!.version).toBe(String(2n ** 63n));
    expect(res.records[0]!.checksum).toBe('18446744073709551615');
    expect(res.appliedIndex).toBe('42');
  });

  test('ReportBadFragments and CheckFragments: enums, bytes and 64-bit fields survive the trip', async () => {
    const s = await start(fakeCoordinator({ leader: true }, []));
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    const key = Buffer.from([0, 255, 9]);
    const report = { namespace: 'default', key, version: String(2n ** 64n - 1n), index: 5, nodeId: 'sn-1', reason: 'corrupt', detail: 'TW_CHECKSUM_MISMATCH', seenAtMs: '1700000000000', count: 2 };
    expect((await client.call('reportBadFragments', { gatewayId: 'g', reports: [report, report], dropped: '3' })).accepted).toBe(5);
    const res = await client.call('checkFragments', {
      nodeId: 'sn-1',
      fragments: [0, 1, 2].map((index) => ({ namespace: 'default', key, version: String(2n ** 63n + 1n), index })),
    });
    expect(res.liveness).toEqual(['FRAGMENT_LIVENESS_UNKNOWN', 'FRAGMENT_LIVENESS_LIVE', 'FRAGMENT_LIVENESS_DEAD']);
    expect(res.nodeRegisteredAtMs).toBe(String(2n ** 63n + 1n));
    expect(res.appliedIndex).toBe('7');
  });

  test('VerifyNamespaceToken: three booleans cross the wire, false ones included', async () => {
    const s = await start(fakeCoordinator({ leader: true }, []));
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    expect(await client.call('verifyNamespaceToken', { namespace: 'locked', token: 's3cret' })).toEqual({ known: true, hasToken: true, valid: true });
    expect(await client.call('verifyNamespaceToken', { namespace: 'locked', token: 'wrong' })).toEqual({ known: true, hasToken: true, valid: false });
    expect(await client.call('verifyNamespaceToken', { namespace: 'open', token: '' })).toEqual({ known: true, hasToken: false, valid: false });
    expect(await client.call('verifyNamespaceToken', { namespace: 'nope', token: 'x' })).toEqual({ known: false, hasToken: false, valid: false });
  });

  test('our error codes, details and retryability cross the wire', async () => {
    const s = await start(fakeCoordinator({ leader: true }, []));
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    const err = await client.call('lookupPrefix', { namespace: 'missing', keys: [], token: '', includeRecords: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TwError);
    expect(err).toMatchObject({ code: 'TW_TEST_UNKNOWN_NAMESPACE', retryable: false, details: { namespace: 'missing' } });
  });

  test('followers answer NOT_LEADER with a hint and the client follows it', async () => {
    const calls: string[] = [];
    const leader = await start(fakeCoordinator({ leader: true }, calls));
    const f1 = await start(fakeCoordinator({ leader: false, hint: () => leader.address }, calls));
    const f2 = await start(fakeCoordinator({ leader: false, hint: () => leader.address }, calls));
    const client = new CoordinatorClient([f1.address, f2.address, leader.address]);
    clients.push(client);
    expect((await client.call('lookupPrefix', { namespace: 'default', keys: [Buffer.from('k')], token: '', includeRecords: false })).hits).toBe(1);
    expect(calls).toEqual(['lookupPrefix', 'lookupPrefix']); // one follower, then the leader
    expect(client.leaderGuess).toBe(leader.address);
  });

  test('an unreachable coordinator is skipped after a backoff', async () => {
    const leader = await start(fakeCoordinator({ leader: true }, []));
    const dead = await start(fakeCoordinator({ leader: true }, []));
    const deadAddress = dead.address;
    await dead.close(0);
    servers.splice(servers.indexOf(dead), 1);
    const sleeps: number[] = [];
    const client = new CoordinatorClient([deadAddress, leader.address], { deadlineMs: 2000, sleep: async (ms) => void sleeps.push(ms) });
    clients.push(client);
    expect((await client.call('lookupPrefix', { namespace: 'default', keys: [], token: '', includeRecords: false })).hits).toBe(0);
    expect(sleeps.length).toBeGreaterThanOrEqual(1);
  });

  test('retries are bounded: no leader anywhere ends in a retryable coded error', async () => {
    const a = await start(fakeCoordinator({ leader: false, hint: () => '' }, []));
    const b = await start(fakeCoordinator({ leader: false, hint: () => '' }, []));
    const client = new CoordinatorClient([a.address, b.address], { attemptsMax: 5, sleep: async () => undefined });
    clients.push(client);
    await expect(client.call('lookupPrefix', { namespace: 'default', keys: [], token: '', includeRecords: false })).rejects.toMatchObject({ code: 'TW_NOT_LEADER', retryable: true });
  });

  test('an aborted call rejects with TW_RPC_ABORTED', async () => {
    const s = await start(fakeCoordinator({ leader: true }, []));
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    const ac = new AbortController();
    ac.abort();
    await expect(client.call('lookupPrefix', { namespace: 'default', keys: [], token: '', includeRecords: false }, { signal: ac.signal })).rejects.toMatchObject({ code: 'TW_RPC_ABORTED' });
  });

  test('a client that cancels a call in flight aborts the handler\'s signal with TW_RPC_ABORTED', async () => {
    let started!: () => void;
    const inHandler = new Promise<void>((r) => (started = r));
    let aborted!: (reason: unknown) => void;
    const sawAbort = new Promise<unknown>((r) => (aborted = r));
    let peer = '';
    const impl = fakeCoordinator({ leader: true }, []);
    impl.commitBlocks = (_req, ctx) => {
      peer = ctx.peer;
      ctx.signal.addEventListener('abort', () => aborted(ctx.signal.reason), { once: true });
      started();
      return new Promise(() => undefined); // answers only by being cancelled
    };
    const s = await start(impl);
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    const ac = new AbortController();
    const call = client.call('commitBlocks', { namespace: 'default', blocks: [], token: '', requestId: { clientId: 'c', seq: '1' } }, { signal: ac.signal });
    await inHandler;
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: 'TW_RPC_ABORTED' });
    expect(await sawAbort).toMatchObject({ code: 'TW_RPC_ABORTED' });
    expect(peer).toContain('127.0.0.1');
  });

  test('WatchClusterMap streams each epoch', async () => {
    const s = await start(fakeCoordinator({ leader: true }, []));
    const client = new CoordinatorClient([s.address]);
    clients.push(client);
    const maps: ClusterMapMsg[] = [];
    await new Promise<void>((resolve) => {
      const stop = client.watchClusterMap((m) => {
        maps.push(m);
        if (maps.length === 3) {
          stop();
          resolve();
        }
      });
    });
    expect(maps.map((m) => m.epoch)).toEqual(['1', '2', '3']);
    expect(maps[2]!.pgMap.equals(Buffer.from([3]))).toBe(true);
  });
});

describe('raft peer service', () => {
  test('message batches and chunked snapshots', async () => {
    const stepped: Buffer[][] = [];
    const snapshots: { metadata: Buffer; data: Buffer }[] = [];
    const s = await startGrpcServer('127.0.0.1:0', (server) =>
      addRaftPeerService(server, {
        async step(batch) {
          stepped.push(batch.messages);
        },
        async installSnapshot(chunks) {
          let metadata: Buffer = Buffer.alloc(0);
          const data: Buffer[] = [];
          for await (const c of chunks) {
            if (c.metadata.length) metadata = c.metadata;
            data.push(c.data);
          }
          snapshots.push({ metadata, data: Buffer.concat(data) });
        },
      }),
    );
    servers.push(s);
    const peer = new RaftPeerClient(s.address);
    clients.push(peer);
    await peer.step({ from: '1', messages: [Buffer.from('a'), Buffer.from('bc')] });
    expect(stepped).toEqual([[Buffer.from('a'), Buffer.from('bc')]]);
    const big = Buffer.alloc(10 * 1024 * 1024, 7);
    async function* chunks(): AsyncGenerator<SnapshotChunkMsg> {
      for (let off = 0; off < big.length; off += 1024 * 1024) {
        yield { from: '1', metadata: off === 0 ? Buffer.from('meta') : Buffer.alloc(0), data: big.subarray(off, off + 1024 * 1024), last: off + 1024 * 1024 >= big.length };
      }
    }
    await peer.installSnapshot(chunks());
    expect(snapshots[0]!.metadata.toString()).toBe('meta');
    expect(snapshots[0]!.data.equals(big)).toBe(true);
  });
});
