import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Counter, Gauge } from 'prom-client';
import { parseRedundancy } from '@tw/block-format';
import { cachingKvStore, isBlockRecordKey, levelKvStore, openBlockMap } from '@tw/block-map';
import { BlockMapStateMachine, CoordinatorService } from '@tw/coordinator-service';
import { type AdminHttp, type Logger, createMetricsRegistry, startAdminHttp } from '@tw/observability';
import { seededRandom } from '@tw/raft';
import { GrpcRaftTransport, RaftNode, raftPeerService } from '@tw/raft-node';
import { LevelRaftStorage } from '@tw/raft-storage-level';
import { type RunningGrpcServer, addCoordinatorService, addRaftPeerService, startGrpcServer } from '@tw/rpc';
import type { CoordinatorConfig } from './config.js';
import { coordinatorAppErrors } from './errors.js';
import { addBadFragmentRoutes, registerFragmentMetrics } from './fragment-admin.js';

/** Outside the block map's key space (its tags end at 0x08); written only to sync LevelDB's log. */
const SYNC_MARKER_KEY = Uint8Array.from([0xff, 0x73, 0x79, 0x6e, 0x63]);

export interface RunningCoordinator {
  readonly grpcAddress: string;
  readonly adminUrl: string;
  readonly raft: RaftNode;
  stop(): Promise<void>;
}

/** Wires LevelDB (block map and raft log), the raft node, gRPC and the admin endpoint. */
export async function startCoordinator(config: CoordinatorConfig, log: Logger): Promise<RunningCoordinator> {
  const peers = new Map(config.peers.map((p) => [p.id, p.address] as const));
  if (peers.size !== config.peers.length) throw coordinatorAppErrors.create('TW_COORDINATOR_CONFIG', 'peers: duplicate ids');
  if (!peers.has(config.id)) throw coordinatorAppErrors.create('TW_COORDINATOR_CONFIG', `peers: this coordinator's id ${config.id} is not listed`);
  if (!config.domainLevels.includes(config.failureDomain)) {
    throw coordinatorAppErrors.create('TW_COORDINATOR_CONFIG', `failureDomain ${config.failureDomain} is not one of domainLevels ${config.domainLevels.join('/')}`);
  }
  let redundancy;
  try {
    redundancy = parseRedundancy(config.redundancy);
  } catch (err) {
    throw coordinatorAppErrors.create('TW_COORDINATOR_CONFIG', `redundancy: ${(err as Error).message}`, { cause: err });
  }

  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(config.dataDir, 'blockmap'), { keyEncoding: 'view', valueEncoding: 'view', writeBufferSize: config.levelDbWriteBufferBytes });
  await db.open();
  // Write-behind with a record cache: an apply's writes reach LevelDB as one batch per flush
  // (not one per entry), and lookups of recently written or read records skip LevelDB.
  // The block map is the store's only writer and encodes fresh arrays for every apply: adopt them.
  // Written records enter the cache only on the leader, which serves the lookups (onRoleChange).
  const store = cachingKvStore(levelKvStore(db), { cacheable: isBlockRecordKey, cacheEntriesMax: config.blockCacheEntries, adoptWrites: true, writeAllocate: false });
  const blockMap = await openBlockMap(store);
  // Block-map writes are not fsync'd one by one (Raft replays entries after a crash), but the
  // Raft log must never be compacted behind state that is not on disk: everything staged goes to
  // LevelDB, then a one-key synced write flushes LevelDB's log; raft-node calls this before every
  // compaction.
  const flushStore = async (): Promise<void> => {
    await store.flush();
    await db.put(SYNC_MARKER_KEY, new Uint8Array(0), { sync: true });
  };
  const raftLog = await LevelRaftStorage.open(join(config.dataDir, 'raft'), {
    bootstrap: { voters: [...peers.keys()].sort((a, b) => a - b), learners: [] },
    writeBufferBytes: config.levelDbWriteBufferBytes,
  });

  const registry = createMetricsRegistry();
  const commits = new Counter({ name: 'tw_coordinator_applied_commands_total', help: 'Commands applied, by op and outcome', labelNames: ['op', 'outcome'], registers: [registry] });
  const service = new CoordinatorService({
    selfId: config.id,
    peers,
    clusterRules: { pgCount: config.pgCount, domainLevels: config.domainLevels, redundancy, failureDomain: config.failureDomain, domainCapMax: 0 },
    openDefaultNamespace: config.openDefaultNamespace,
    defaultRedundancy: redundancy,
    ...(config.adminToken === undefined ? {} : { adminToken: config.adminToken }),
    nodeTimeoutMs: config.nodeTimeoutMs,
    purgeGraceMs: config.purgeGraceMs,
    logger: log,
  });
  const sm = new BlockMapStateMachine(blockMap, (outcome) => {
    commits.inc({ op: outcome.op ?? 'unknown', outcome: outcome.result.ok ? 'ok' : outcome.result.code });
    service.onApplied(outcome);
  }, flushStore);
  const transport = new GrpcRaftTransport(config.id, peers);
  let raft: RaftNode | undefined;
  let grpc: RunningGrpcServer | undefined;
  let admin: AdminHttp | undefined;
  try {
    raft = new RaftNode({
      id: config.id,
      log: raftLog,
      stateMachine: sm,
      transport,
      scratchDir: join(config.dataDir, 'scratch'),
      random: seededRandom(Number(process.hrtime.bigint() % 1_000_000_007n) ^ config.id),
      tickMs: config.tickMs,
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      snapshotEveryEntries: config.snapshotEveryEntries,
      keepEntriesAfterSnapshot: config.keepEntriesAfterSnapshot,
      // Lease reads skip ReadIndex's quorum round; raft accepts them only with check-quorum, which
      // RaftNode always turns on. Sound while clocks drift far less than the election timeout.
      ...(config.leaseReads ? { raftConfig: { readOnlyOption: 'leaseBased' as const } } : {}),
      logger: log,
      onRoleChange: (r) => {
        log.info({ leader: r.leader, isLeader: r.isLeader, term: r.term }, 'raft role');
        store.writeAllocate = r.isLeader;
        service.onRoleChange(r.isLeader);
      },
    });
    const node = raft;
    service.attach(node, blockMap);
    grpc = await startGrpcServer(`${config.listen.host}:${config.listen.port}`, (server) => {
      addCoordinatorService(server, service.impl());
      addRaftPeerService(server, raftPeerService(() => node));
    });
    node.start();

    new Gauge({ name: 'tw_coordinator_is_leader', help: '1 on the Raft leader', registers: [registry], collect() { this.set(node.isLeader ? 1 : 0); } });
    new Gauge({ name: 'tw_coordinator_term', help: 'Raft term', registers: [registry], collect() { this.set(node.term); } });
    new Gauge({ name: 'tw_coordinator_commit_index', help: 'Raft commit index', registers: [registry], collect() { this.set(node.commitIndex); } });
    new Gauge({ name: 'tw_coordinator_applied_index', help: 'Applied index', registers: [registry], collect() { this.set(node.appliedIndex); } });
    new Gauge({ name: 'tw_coordinator_apply_lag', help: 'Committed entries not yet applied', registers: [registry], collect() { this.set(node.commitIndex - node.appliedIndex); } });
    new Gauge({
      name: 'tw_coordinator_blocks',
      help: 'Committed blocks by namespace',
      labelNames: ['namespace'],
      registers: [registry],
      collect() {
        for (const s of blockMap.namespaceStats()) this.set({ namespace: s.namespace }, s.blockCount);
      },
    });
    new Gauge({
      name: 'tw_coordinator_bytes',
      help: 'Bytes of committed blocks by namespace',
      labelNames: ['namespace'],
      registers: [registry],
      collect() {
        for (const s of blockMap.namespaceStats()) this.set({ namespace: s.namespace }, s.usageBytes);
      },
    });
    new Gauge({ name: 'tw_coordinator_block_cache_entries', help: 'Block records (present or absent) in the lookup cache', registers: [registry], collect() { this.set(store.cacheSize); } });
    new Gauge({ name: 'tw_coordinator_cluster_epoch', help: 'Cluster map epoch', registers: [registry], collect() { this.set(blockMap.clusterMap()?.epoch ?? 0); } });
    registerFragmentMetrics(registry, service);
    admin = await startAdminHttp({
      host: config.admin.host,
      port: config.admin.port,
      registry,
      extend: (app) => addBadFragmentRoutes(app, service, config.adminToken),
      readiness: () => {
        if (node.fatalError !== undefined) return { ready: false, reason: `raft stopped: ${(node.fatalError as Error).message}` };
        if (node.leader === 0) return { ready: false, reason: 'no leader elected' };
        return { ready: true };
      },
    });
  } catch (err) {
    await raft?.stop();
    await grpc?.close(0);
    transport.close();
    await raftLog.close();
    await db.close();
    throw err;
  }
  const node = raft;
  const g = grpc;
  const a = admin;
  log.info({ id: config.id, grpcAddress: g.address, adminUrl: a.url, peers: Object.fromEntries(peers) }, 'coordinator ready');
  let stopped: Promise<void> | undefined;
  return {
    grpcAddress: g.address,
    adminUrl: a.url,
    raft: node,
    stop() {
      stopped ??= (async () => {
        service.stop();
        await g.close(2000);
        await node.stop();
        transport.close();
        await a.close();
        await raftLog.close();
        await store.flush().catch(() => undefined); // a failed store was already reported by raft
        await db.close();
        log.info('stopped');
      })();
      return stopped;
    },
  };
}
