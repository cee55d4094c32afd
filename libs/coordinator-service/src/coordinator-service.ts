import { createHash, timingSafeEqual } from 'node:crypto';
import { xxh64 } from '@node-rs/xxhash';
import { type Redundancy, formatRedundancy } from '@tw/block-format';
import {
  type ApplyOutcome,
  type BlockCommit,
  type BlockMap,
  type ClusterRules,
  type Command,
  type CommandResult,
  LOOKUP_KEYS_MAX,
  encodeCommand,
} from '@tw/block-map';
import { isTwError, TwError } from '@tw/errors';
import { pgOf } from '@tw/placement';
import type { NodeId } from '@tw/raft';
import type { RaftNode, ReplicatedStateMachine } from '@tw/raft-node';
import { type ClusterMapMsg, type CoordinatorImpl, type RequestIdMsg, decodeWireKeys, encodeWireVersions, rpcErrors, wireKeyCount } from '@tw/rpc';
import { clusterMapToMsg, commitsFromWire, layoutFromMsg, namespaceToMsg, recordToMsg, redundancyFrom, u64 } from './convert.js';
import { packStoredRecords } from './stored-records.js';
import { BadFragmentLog } from './bad-fragment-log.js';
import { checkFragmentsImpl, reportBadFragmentsImpl } from './fragment-handlers.js';
import { coordinatorErrors } from './errors.js';

export interface CoordinatorServiceOptions {
  /** This coordinator's raft id and every coordinator's gRPC address, by raft id. */
  readonly selfId: NodeId;
  readonly peers: ReadonlyMap<NodeId, string>;
  /** Placement rules proposed by the first leader of a new cluster. */
  readonly clusterRules: ClusterRules;
  /** Creates the `default` namespace (open, no token) when the cluster starts empty. */
  readonly openDefaultNamespace: boolean;
  readonly defaultRedundancy: Redundancy;
  /** Required by namespace administration calls when set. */
  readonly adminToken?: string;
  /** A storage node silent for this long is marked down (default 10 s). */
  readonly nodeTimeoutMs?: number;
  /** Deleted and superseded versions are purged after this grace period (default 60 s). */
  readonly purgeGraceMs?: number;
  /** Called with the fragments of purged versions, so that their storage nodes delete them. */
  readonly onPurged?: (purged: { namespace: string; key: Uint8Array; version: number; fragmentNodes: readonly string[] }[]) => void;
  /** Bad-fragment reports kept (an LRU; default 10,000). */
  readonly badFragmentsMax?: number;
  readonly now?: () => number;
  readonly logger?: { info(o: object, m: string): void; warn(o: object, m: string): void; debug(o: object, m: string): void };
}

/** ReplicatedStateMachine over the block map, with a hook after each apply. */
export class BlockMapStateMachine implements ReplicatedStateMachine {
  constructor(
    readonly blockMap: BlockMap,
    private readonly onApplied: (outcome: ApplyOutcome) => void,
    private readonly flushStore?: () => Promise<void>,
  ) {}
  appliedIndex(): number {
    return this.blockMap.appliedIndex;
  }
  async apply(index: number, data: Uint8Array): Promise<unknown> {
    const outcome = await this.blockMap.apply(index, data);
    this.onApplied(outcome);
    return outcome;
  }
  async applyBatch(entries: readonly { readonly index: number; readonly data: Uint8Array }[]): Promise<unknown[]> {
    const outcomes = await this.blockMap.applyBatch(entries);
    for (const outcome of outcomes) this.onApplied(outcome);
    return outcomes;
  }
  async flush(): Promise<void> {
    await this.flushStore?.();
  }
  async openSnapshot(): Promise<{ index: number; chunks: AsyncIterable<Uint8Array> }> {
    const stream = this.blockMap.snapshotChunks(1024 * 1024);
    return { index: stream.appliedIndex, chunks: stream };
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    await this.blockMap.restoreFromChunks(chunks);
  }
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * The coordinator's control-plane API over its Raft node and block map. Writes are proposed
 * through Raft and answered once applied here; reads wait for a ReadIndex barrier
 * (linearizable), shared by the reads that arrive while one is being set up. Followers answer
 * writes with TW_NOT_LEADER and the leader's address.
 *
 * The leader also runs the cluster's housekeeping: it initialises a new cluster, marks silent
 * storage nodes down, and purges deleted versions after their grace period.
 */
export class CoordinatorService {
  readonly #opts: CoordinatorServiceOptions;
  readonly #now: () => number;
  #raft: RaftNode | undefined;
  #blockMap: BlockMap | undefined;
  readonly #watchers = new Set<(map: ClusterMapMsg) => void>();
  readonly #heartbeats = new Map<string, number>();
  readonly #adminUrls = new Map<string, string>();
  #leaderSince = 0;
  #barrier: Promise<void> | undefined;
  #housekeeping: NodeJS.Timeout | undefined;
  #housekeepingBusy = false;
  #systemSeq = 0;
  #initializing: Promise<void> | undefined;
  readonly #clientId: number;
  /** Bad-fragment reports from the gateways (leader-local, see bad-fragment-log.ts). */
  readonly badFragments: BadFragmentLog;
  /** CheckFragments answers given, by liveness (for /metrics). */
  readonly fragmentChecks = { live: 0, dead: 0, unknown: 0 };

  constructor(options: CoordinatorServiceOptions) {
    this.#opts = options;
    this.#now = options.now ?? Date.now;
    this.badFragments = new BadFragmentLog(options.badFragmentsMax ?? 10_000, this.#now);
    // Leader housekeeping uses a client session of its own (distinct per coordinator).
    this.#clientId = Number(xxh64(Buffer.from(`coordinator-${options.selfId}-${process.pid}-${Date.now()}`), 0n) & 0x1f_ffff_ffff_ffffn) || 1;
  }

  /** Binds the running raft node and block map (after both are open). */
  attach(raft: RaftNode, blockMap: BlockMap): void {
    this.#raft = raft;
    this.#blockMap = blockMap;
    this.#housekeeping = setInterval(() => void this.#housekeep(), 500);
  }

  /** Hook for the state machine: notifies cluster-map watchers after node commands. */
  onApplied(outcome: ApplyOutcome): void {
    if (!outcome.result.ok) return;
    const op = outcome.result.op;
    if (op === 'node' || op === 'init-cluster') {
      const map = this.#clusterMapMsg();
      if (map !== undefined) for (const w of this.#watchers) w(map);
    }
  }

  /** Leadership changes (from the raft node). */
  onRoleChange(isLeader: boolean): void {
    if (isLeader) {
      this.#leaderSince = this.#now();
      this.#heartbeats.clear(); // every node gets a full timeout to report to the new leader
    }
  }

  stop(): void {
    clearInterval(this.#housekeeping);
    this.#watchers.clear();
  }

  get #map(): BlockMap {
    if (this.#blockMap === undefined) throw rpcErrors.create('TW_RPC_UNAVAILABLE', 'coordinator starting');
    return this.#blockMap;
  }

  get #node(): RaftNode {
    if (this.#raft === undefined) throw rpcErrors.create('TW_RPC_UNAVAILABLE', 'coordinator starting');
    return this.#raft;
  }

  #clusterMapMsg(): ClusterMapMsg | undefined {
    const view = this.#map.clusterMap();
    return view === null ? undefined : clusterMapToMsg(view, this.#map.pgMap(), this.#adminUrls);
  }

  /** Maps raft-level "not leader" to the RPC's NOT_LEADER with the leader's address. */
  #translate(err: unknown): never {
    if (isTwError(err, 'TW_RAFT_NODE_NOT_LEADER')) {
      const leader = (err.details as { leader?: number } | undefined)?.leader ?? 0;
      const address = this.#opts.peers.get(leader);
      throw rpcErrors.create('TW_NOT_LEADER', `not the leader${address ? `; the leader is ${address}` : ' (none elected yet)'}`, {
        details: address ? { leader: address } : {},
      });
    }
    throw err;
  }

  async #propose(command: Command, requestId: { clientId: number; seq: number }): Promise<CommandResult> {
    if (command.op !== 'init-cluster' && command.op !== 'create-namespace') await this.#ensureInitialized();
    const bytes = encodeCommand({ clientId: requestId.clientId, seq: requestId.seq, nowMs: this.#now(), command });
    let outcome: ApplyOutcome;
    try {
      outcome = (await this.#node.propose(bytes)) as ApplyOutcome;
    } catch (err) {
      this.#translate(err);
    }
    return outcome.result;
  }

  /** Like #propose, but a coded error result becomes a thrown TwError. */
  async #proposeOk(command: Command, requestId: { clientId: number; seq: number }): Promise<Exclude<CommandResult, { ok: false }>> {
    const result = await this.#propose(command, requestId);
    if (!result.ok) throw new TwError(result.code, result.message, { details: result.details });
    return result;
  }

  /**
   * A new cluster's first leader initialises the cluster map before anything else; a request that
   * arrives first (a storage node registering) triggers it rather than failing.
   */
  async #ensureInitialized(): Promise<void> {
    const needDefault = this.#opts.openDefaultNamespace && this.#map.namespace('default') === undefined;
    if ((this.#map.clusterMap() !== null && !needDefault) || !this.#node.isLeader) return;
    this.#initializing ??= (async () => {
      if (this.#map.clusterMap() === null) {
        const r = await this.#propose({ op: 'init-cluster', rules: this.#opts.clusterRules }, this.#systemRequest());
        if (r.ok) this.#opts.logger?.info({ pgCount: this.#opts.clusterRules.pgCount, redundancy: formatRedundancy(this.#opts.clusterRules.redundancy) }, 'cluster initialised');
      }
      if (this.#opts.openDefaultNamespace && this.#map.namespace('default') === undefined) {
        await this.#propose(
          { op: 'create-namespace', name: 'default', quotaBytes: null, defaultTtlMs: 0, redundancy: this.#opts.defaultRedundancy, tokenHash: new Uint8Array(0) },
          this.#systemRequest(),
        );
      }
    })().finally(() => {
        this.#initializing = undefined;
      });
    await this.#initializing;
  }

  #systemRequest(): { clientId: number; seq: number } {
    return { clientId: this.#clientId, seq: ++this.#systemSeq };
  }

  /** A linearizable read barrier, shared by the reads that arrive before it starts. */
  async #readBarrier(): Promise<void> {
    if (this.#barrier === undefined) {
      this.#barrier = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.#barrier = undefined;
        return this.#node.readBarrier();
      });
    }
    try {
      await this.#barrier;
    } catch (err) {
      if (isTwError(err, 'TW_RAFT_NODE_TIMEOUT')) throw rpcErrors.create('TW_RPC_UNAVAILABLE', 'no quorum confirmed the read in time', { cause: err });
      this.#translate(err);
    }
  }

  #requestId(r: RequestIdMsg | null): { clientId: number; seq: number } {
    if (r === null || r.clientId === '') return { clientId: 0, seq: 0 };
    const clientId = Number(xxh64(Buffer.from(r.clientId, 'utf8'), 0n) & 0x1f_ffff_ffff_ffffn) || 1;
    return { clientId, seq: u64('requestId.seq', r.seq) };
  }

  /** Whether `token` opens `namespace` (constant-time comparison of hashes). */
  #verifyToken(namespace: string, token: string): { known: boolean; hasToken: boolean; valid: boolean } {
    const ns = this.#map.namespace(namespace);
    if (ns === undefined) return { known: false, hasToken: false, valid: false };
    if (ns.tokenHash.byteLength === 0) return { known: true, hasToken: false, valid: false };
    const given = sha256(token);
    const valid = given.length === ns.tokenHash.byteLength && timingSafeEqual(given, Buffer.from(ns.tokenHash));
    return { known: true, hasToken: true, valid };
  }

  #checkNamespaceToken(namespace: string, token: string): void {
    const ns = this.#map.namespace(namespace);
    if (ns === undefined) return; // apply / lookup answer the unknown namespace with its own code
    if (ns.tokenHash.byteLength === 0) return;
    const given = sha256(token);
    if (given.length !== ns.tokenHash.byteLength || !timingSafeEqual(given, Buffer.from(ns.tokenHash))) {
      throw coordinatorErrors.create('TW_COORD_FORBIDDEN', `wrong or missing token for namespace ${namespace}`);
    }
  }

  #checkAdmin(token: string): void {
    const want = this.#opts.adminToken;
    if (want === undefined || want === '') return;
    const a = sha256(token);
    const b = sha256(want);
    if (!timingSafeEqual(a, b)) throw coordinatorErrors.create('TW_COORD_FORBIDDEN', 'wrong or missing admin token');
  }

  /** The gRPC Coordinator service implementation. */
  impl(): CoordinatorImpl {
    const impl = this.#impl();
    // A replica whose block map is being restored from a snapshot (or refuses work after a
    // store failure) cannot answer: that is "try another coordinator", not the caller's error.
    const guard = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        if (isTwError(err, 'TW_BLOCKMAP_RESTORE_INCOMPLETE') || isTwError(err, 'TW_BLOCKMAP_CORRUPT_STATE')) {
          throw rpcErrors.create('TW_RPC_UNAVAILABLE', `this coordinator cannot serve right now: ${err.message}`, { cause: err });
        }
        throw err;
      }
    };
    return Object.fromEntries(Object.entries(impl).map(([k, fn]) => [k, guard((fn as (...a: unknown[]) => Promise<unknown>).bind(impl))])) as unknown as CoordinatorImpl;
  }

  /** A lookup's keys: `keys`, or `packedKeys` (encodeWireKeys) from clients that pack them; never both. */
  #lookupKeys(keys: readonly Buffer[], packedKeys: Buffer | undefined): readonly Uint8Array[] {
    const packed = packedKeys !== undefined && packedKeys.length > 0;
    if (packed && keys.length > 0) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'lookupPrefix takes keys or packedKeys, not both');
    let n = keys.length;
    try {
      if (packed) n = wireKeyCount(packedKeys);
      if (n > LOOKUP_KEYS_MAX) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `lookupPrefix takes at most ${LOOKUP_KEYS_MAX} keys, got ${n}`);
      return packed ? decodeWireKeys(packedKeys) : keys;
    } catch (err) {
      if (isTwError(err, 'TW_RPC_BAD_PACKED')) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `packedKeys: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** Writes go to the leader: answer NOT_LEADER before touching local state. */
  #requireLeader(): void {
    if (!this.#node.isLeader) this.#translate(this.#notLeaderError());
  }

  #impl(): CoordinatorImpl {
    return {
      lookupPrefix: async (req) => {
        const keys = this.#lookupKeys(req.keys, req.packedKeys);
        await this.#readBarrier();
        this.#checkNamespaceToken(req.namespace, req.token);
        const packed = req.includeRecords && req.packed === true;
        if (packed || !req.includeRecords) {
          // Packed (or no) records: copy fields out of the stored bytes (see stored-records.ts).
          // The stored bytes are in the map's reused buffer: packed (copied) before anything else runs.
          const map = this.#map;
          const res = await map.lookupPrefixStoredWith(req.namespace, keys, { nowMs: this.#now() }, (stored) => ({
            count: stored.count,
            packedRecords: packed ? packStoredRecords(keys, stored, (i) => map.nodeIdOf(i)) : undefined,
          }));
          return {
            hits: res.count,
            records: [],
            appliedIndex: String(this.#node.appliedIndex),
            keysRead: keys.length,
            ...(res.packedRecords !== undefined ? { packedRecords: res.packedRecords } : {}),
          };
        }
        const res = await this.#map.lookupPrefix(req.namespace, keys, { nowMs: this.#now() });
        const pgCount = this.#map.clusterMap()?.rules.pgCount ?? 1;
        return {
          hits: res.count,
          records: res.records.map((r) => recordToMsg(r, pgOf(r.namespace, r.key, pgCount))),
          appliedIndex: String(this.#node.appliedIndex),
          keysRead: keys.length,
        };
      },
      commitBlocks: async (req) => {
        this.#requireLeader();
        this.#checkNamespaceToken(req.namespace, req.token);
        const packed = req.packedBlocks !== undefined && req.packedBlocks.length > 0;
        if (packed && req.blocks.length > 0) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'commitBlocks takes blocks or packedBlocks, not both');
        const blocks: BlockCommit[] = packed ? commitsFromWire(req.packedBlocks!) : req.blocks.map((b, i) => ({
          key: b.key,
          sizeBytes: u64(`blocks[${i}].sizeBytes`, b.sizeBytes),
          checksum: BigInt(b.checksum || '0'),
          fragmentNodes: b.fragmentNodes,
          ...(b.redundancy ? { redundancy: redundancyFrom(`blocks[${i}].redundancy`, b.redundancy) } : {}),
          layout: layoutFromMsg(b.layout),
          ...(b.ttlMs && b.ttlMs !== '0' ? { ttlMs: u64(`blocks[${i}].ttlMs`, b.ttlMs) } : {}),
          pinned: b.pinned,
          ...(b.version && b.version !== '0' ? { writeVersion: BigInt(b.version) } : {}),
        }));
        const result = await this.#proposeOk({ op: 'commit-blocks', namespace: req.namespace, blocks }, this.#requestId(req.requestId));
        if (result.op !== 'commit-blocks') throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'unexpected result');
        if (packed) {
          return { results: [], index: String(this.#node.appliedIndex), packedVersions: encodeWireVersions(result.versions.map((v, i) => blocks[i]!.writeVersion ?? BigInt(v))) };
        }
        return {
          results: result.versions.map((v, i) => ({ version: blocks[i]!.writeVersion?.toString() ?? String(v), errorCode: '', errorMessage: '', superseded: [] })),
          index: String(this.#node.appliedIndex),
        };
      },
      deleteBlocks: async (req) => {
        this.#requireLeader();
        this.#checkNamespaceToken(req.namespace, req.token);
        const result = await this.#proposeOk({ op: 'delete-blocks', namespace: req.namespace, keys: req.keys }, this.#requestId(req.requestId));
        return { deleted: result.op === 'delete-blocks' ? result.deleted : 0, index: String(this.#node.appliedIndex) };
      },
      registerNode: async (req) => {
        const n = req.node;
        if (n === null || n.nodeId === '' || n.dataAddress === '') throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'registerNode needs node.nodeId and node.dataAddress');
        if (n.adminUrl) this.#adminUrls.set(n.nodeId, n.adminUrl);
        const domain = n.failureDomain.length > 0 ? n.failureDomain.join('/') : `host-${n.nodeId}`;
        const result = await this.#proposeOk({ op: 'register-node', id: n.nodeId, address: n.dataAddress, domain, weight: n.weight > 0 ? n.weight : 1 }, this.#requestId(req.requestId));
        this.#heartbeats.set(n.nodeId, this.#now());
        return { epoch: String(result.op === 'node' ? result.epoch : 0) };
      },
      heartbeat: async (req) => {
        if (!this.#node.isLeader) this.#translate(this.#notLeaderError());
        this.#heartbeats.set(req.nodeId, this.#now());
        const view = this.#map.clusterMap();
        const node = view?.nodes.find((x) => x.id === req.nodeId);
        if (node === undefined) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `node ${req.nodeId} is not registered: call RegisterNode`);
        if (node.state === 'down') {
          await this.#proposeOk({ op: 'set-node-state', id: req.nodeId, state: 'up' }, this.#systemRequest());
          this.#opts.logger?.info({ node: req.nodeId }, 'storage node is back up');
        }
        return { epoch: String(this.#map.clusterMap()?.epoch ?? 0) };
      },
      watchClusterMap: async (req, push, ctx) => {
        const known = u64('knownEpoch', req.knownEpoch);
        const queue: ClusterMapMsg[] = [];
        let wake: (() => void) | undefined;
        const watcher = (m: ClusterMapMsg): void => {
          queue.push(m);
          wake?.();
        };
        this.#watchers.add(watcher);
        try {
          const current = this.#clusterMapMsg();
          if (current !== undefined && Number(current.epoch) > known) queue.push(current);
          while (!ctx.signal.aborted) {
            while (queue.length > 0) {
              // Coalesce: only the newest map matters to a watcher that fell behind.
              const m = queue.splice(0).pop()!;
              await push(m);
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
              ctx.signal.addEventListener('abort', () => resolve(), { once: true });
            });
            wake = undefined;
          }
        } finally {
          this.#watchers.delete(watcher);
        }
      },
      createNamespace: async (req) => {
        this.#checkAdmin(req.adminToken);
        const ns = req.namespace;
        if (ns === null) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'createNamespace needs a namespace');
        const quota = u64('namespace.quotaBytes', ns.quotaBytes);
        await this.#proposeOk(
          {
            op: 'create-namespace',
            name: ns.name,
            quotaBytes: quota === 0 ? null : quota,
            defaultTtlMs: u64('namespace.defaultTtlMs', ns.defaultTtlMs),
            redundancy: ns.redundancy ? redundancyFrom('namespace.redundancy', ns.redundancy) : this.#opts.defaultRedundancy,
            tokenHash: req.token ? sha256(req.token) : new Uint8Array(0),
          },
          this.#requestId(req.requestId),
        );
        return namespaceToMsg(this.#map.namespace(ns.name)!);
      },
      getNamespace: async (req) => {
        this.#checkAdmin(req.adminToken);
        await this.#readBarrier();
        const ns = this.#map.namespace(req.name);
        if (ns === undefined) throw new TwError('TW_BLOCKMAP_UNKNOWN_NAMESPACE', `namespace ${req.name} does not exist`);
        return namespaceToMsg(ns);
      },
      listNamespaces: async (req) => {
        this.#checkAdmin(req.adminToken);
        await this.#readBarrier();
        return { namespaces: this.#map.namespaces().map(namespaceToMsg) };
      },
      deleteNamespace: async (req) => {
        this.#checkAdmin(req.adminToken);
        await this.#proposeOk({ op: 'delete-namespace', name: req.name }, this.#requestId(req.requestId));
        return {};
      },
      verifyNamespaceToken: async (req) => {
        if (typeof req.namespace !== 'string' || req.namespace.length === 0 || req.namespace.length > 256) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'verifyNamespaceToken needs a namespace name');
        if (req.token.length > 4096) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'token longer than 4096 characters');
        await this.#readBarrier();
        return this.#verifyToken(req.namespace, req.token);
      },
      reportBadFragments: async (req) => {
        // Reports gather on the leader, which drives repair; followers point the gateway there.
        this.#requireLeader();
        return reportBadFragmentsImpl(req, this.badFragments, this.#opts.logger);
      },
      checkFragments: async (req) => {
        await this.#readBarrier();
        const res = await checkFragmentsImpl(req, this.#map, this.fragmentChecks);
        return { ...res, appliedIndex: String(this.#node.appliedIndex) };
      },
    };
  }

  #notLeaderError(): TwError {
    return new TwError('TW_RAFT_NODE_NOT_LEADER', 'not the leader', { details: { leader: this.#node.leader }, retryable: true });
  }

  /** Leader-only housekeeping, one pass at a time. */
  async #housekeep(): Promise<void> {
    if (this.#housekeepingBusy || this.#raft === undefined || !this.#raft.isLeader) return;
    this.#housekeepingBusy = true;
    try {
      const map = this.#map;
      await this.#ensureInitialized();
      // Silent storage nodes go down (a new epoch; their PG slots move).
      const now = this.#now();
      const timeout = this.#opts.nodeTimeoutMs ?? 10_000;
      for (const n of map.clusterMap()?.nodes ?? []) {
        if (n.state !== 'up') continue;
        const last = this.#heartbeats.get(n.id) ?? this.#leaderSince;
        if (now - last > timeout) {
          const r = await this.#propose({ op: 'mark-node-down', id: n.id, silentSinceMs: last }, this.#systemRequest());
          this.#opts.logger?.warn({ node: n.id, silentMs: now - last, ok: r.ok }, 'storage node silent: marked down');
        }
      }
      // Purge versions whose grace period is over.
      const grace = this.#opts.purgeGraceMs ?? 60_000;
      const candidates = await map.listPurgeable({ nowMs: now, graceMs: grace, limit: 512 });
      if (candidates.length > 0) {
        const r = await this.#propose({ op: 'purge-blocks', graceMs: grace, refs: candidates.map((c) => ({ namespace: c.namespace, key: c.key, version: c.version })) }, this.#systemRequest());
        if (r.ok && r.op === 'purge-blocks' && r.purged.length > 0) this.#opts.onPurged?.(r.purged.map((p) => ({ ...p })));
      }
    } catch (err) {
      this.#opts.logger?.debug({ err: (err as Error).message }, 'housekeeping pass failed; will retry');
    } finally {
      this.#housekeepingBusy = false;
    }
  }
}
