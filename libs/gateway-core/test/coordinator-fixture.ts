/**
 * A single-node stand-in for the coordinator group: @tw/rpc's Coordinator gRPC service backed by
 * the real @tw/block-map state machine applied locally (no Raft) on an in-memory KvStore.
 * Versions: the gateway stores fragments under the version it chose before writing
 * (BlockCommit.version); block-map keeps it as `writeVersion` next to its own commit-order
 * `version`, which travels as BlockRecord.map_version.
 */
import { parseRedundancy } from '@tw/block-format';
import { type BlockMap, type Command, encodeCommand, memoryKvStore, openBlockMap } from '@tw/block-map';
import { recordToMsg, recordToWire } from '@tw/coordinator-service';
import { TwError } from '@tw/errors';
import { pgMapToJson } from '@tw/placement';
import {
  type ClusterMapMsg,
  type CoordinatorImpl,
  type RunningGrpcServer,
  addCoordinatorService,
  decodeWireKeys,
  encodeWireRecords,
  startGrpcServer,
} from '@tw/rpc';

export interface FixtureNode {
  readonly id: string;
  readonly address: string;
}

export class CoordinatorFixture {
  #index = 0;
  #clients = new Map<string, number>();
  readonly #watchers = new Set<(m: ClusterMapMsg) => void>();
  #hold: Promise<void> | undefined;
  #release: (() => void) | undefined;
  commitCalls = 0;
  /** ReportBadFragments calls received, flattened. */
  readonly badFragmentReports: import('@tw/rpc').BadFragmentReportMsg[] = [];
  badFragmentsDropped = 0;
  lookupCalls = 0;
  /** Answer lookups that ask for packed records in packed form (as the real service); false: messages only (an older coordinator). */
  packedLookups = true;
  /** Read lookups' keys only from `keys` and leave `keysRead` out (a coordinator that predates packedKeys). */
  legacyLookups = false;

  private constructor(
    readonly map: BlockMap,
    public server: RunningGrpcServer | undefined,
    private readonly nowMs: () => number,
  ) {}

  static async start(nodes: readonly FixtureNode[], options: { pgCount?: number; k?: number; m?: number; nowMs?: () => number } = {}): Promise<CoordinatorFixture> {
    const map = await openBlockMap(memoryKvStore());
    const f = new CoordinatorFixture(map, undefined, options.nowMs ?? Date.now);
    const redundancy = { kind: 'ec' as const, k: options.k ?? 4, m: options.m ?? 2 };
    await f.apply({ op: 'init-cluster', rules: { pgCount: options.pgCount ?? 64, domainLevels: ['host'], redundancy, failureDomain: 'host', domainCapMax: 0 } });
    for (const n of nodes) await f.apply({ op: 'register-node', id: n.id, address: n.address, domain: `h-${n.id}`, weight: 1 });
    await f.apply({ op: 'create-namespace', name: 'default', quotaBytes: null, defaultTtlMs: 0, redundancy, tokenHash: new Uint8Array(0) });
    await f.apply({ op: 'create-namespace', name: 'other', quotaBytes: null, defaultTtlMs: 0, redundancy, tokenHash: new Uint8Array(0) });
    f.server = await startGrpcServer('127.0.0.1:0', (s) => addCoordinatorService(s, f.#impl()));
    return f;
  }

  get address(): string {
    return this.server!.address;
  }

  async apply(command: Command, clientId = 0, seq = 0): Promise<import('@tw/block-map').CommandResult> {
    const out = await this.map.apply(++this.#index, encodeCommand({ clientId, seq, nowMs: this.nowMs(), command }));
    return out.result;
  }

  /** Commits wait until the returned function is called (to observe "accepted, not committed"). */
  holdCommits(): () => void {
    this.#hold = new Promise((r) => (this.#release = r));
    return () => {
      this.#release?.();
      this.#hold = undefined;
    };
  }

  /** Pushes the current cluster map to every watcher (after a node state change). */
  async setNodeState(id: string, state: 'up' | 'down'): Promise<void> {
    await this.apply({ op: 'set-node-state', id, state });
    const m = this.clusterMapMsg();
    for (const w of this.#watchers) w(m);
  }

  /** Registers (or re-registers at a new address) a node and pushes the new map. */
  async registerNode(id: string, address: string): Promise<void> {
    await this.apply({ op: 'register-node', id, address, domain: `h-${id}`, weight: 1 });
    const m = this.clusterMapMsg();
    for (const w of this.#watchers) w(m);
  }

  clusterMapMsg(): ClusterMapMsg {
    const cm = this.map.clusterMap()!;
    const pg = this.map.pgMap();
    return {
      epoch: String(cm.epoch),
      nodes: cm.nodes.map((n) => ({
        nodeId: n.id,
        dataAddress: n.address,
        adminUrl: '',
        failureDomain: [n.domain],
        weight: n.weight,
        state: n.state,
        capacityBytes: '0',
        usedBytes: '0',
      })),
      pgCount: cm.rules.pgCount,
      pgMap: pg === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(pgMapToJson(pg)), 'utf8'),
    };
  }

  #clientNumber(id: string): number {
    let n = this.#clients.get(id);
    if (n === undefined) {
      n = this.#clients.size + 1;
      this.#clients.set(id, n);
    }
    return n;
  }

  #impl(): CoordinatorImpl {
    const unsupported = async (): Promise<never> => {
      throw new TwError('TW_RPC_UNAVAILABLE', 'not served by the test fixture');
    };
    return {
      lookupPrefix: async (req) => {
        this.lookupCalls++;
        // As the real service: keys packed or as messages (a fixture with `legacyLookups` reads
        // only the messages, as a coordinator that predates packedKeys does).
        const packedKeys = req.packedKeys !== undefined && req.packedKeys.length > 0 && !this.legacyLookups;
        const keys = packedKeys ? decodeWireKeys(req.packedKeys!) : req.keys;
        const res = await this.map.lookupPrefix(req.namespace, keys);
        // As the real service: packed records when asked for (and allowed), else messages.
        if (req.includeRecords && req.packed === true && this.packedLookups) {
          const wire = res.records.map(recordToWire);
          return { hits: res.count, records: [], packedRecords: encodeWireRecords(wire), appliedIndex: String(this.#index), ...(this.legacyLookups ? {} : { keysRead: keys.length }) };
        }
        return { hits: res.count, records: req.includeRecords ? res.records.map((r) => recordToMsg(r, 0)) : [], appliedIndex: String(this.#index), ...(this.legacyLookups ? {} : { keysRead: keys.length }) };
      },
      commitBlocks: async (req) => {
        this.commitCalls++;
        if (this.#hold !== undefined) await this.#hold;
        const client = req.requestId === null ? 0 : this.#clientNumber(req.requestId.clientId);
        const result = await this.apply(
          {
            op: 'commit-blocks',
            namespace: req.namespace,
            blocks: req.blocks.map((b) => ({
              key: b.key,
              sizeBytes: Number(b.sizeBytes),
              checksum: BigInt(b.checksum),
              fragmentNodes: b.fragmentNodes,
              redundancy: parseRedundancy(b.redundancy),
              layout: b.layout,
              ttlMs: Number(b.ttlMs),
              pinned: b.pinned,
              ...(b.version === '0' ? {} : { writeVersion: BigInt(b.version) }),
            })),
          },
          client,
          req.requestId === null ? 0 : Number(req.requestId.seq),
        );
        if (!result.ok) return { results: req.blocks.map(() => ({ version: '0', errorCode: result.code, errorMessage: result.message, superseded: [] })), index: String(this.#index) };
        if (result.op !== 'commit-blocks') throw new Error('unexpected result');
        return {
          results: req.blocks.map((b) => ({ version: b.version, errorCode: '', errorMessage: '', superseded: [] })),
          index: String(this.#index),
        };
      },
      deleteBlocks: async (req) => {
        const result = await this.apply({ op: 'delete-blocks', namespace: req.namespace, keys: req.keys });
        if (!result.ok) throw new TwError(result.code, result.message);
        return { deleted: result.op === 'delete-blocks' ? result.deleted : 0, index: String(this.#index) };
      },
      registerNode: unsupported,
      heartbeat: unsupported,
      createNamespace: unsupported,
      getNamespace: unsupported,
      listNamespaces: unsupported,
      deleteNamespace: unsupported,
      reportBadFragments: async (req) => {
        this.badFragmentReports.push(...req.reports);
        this.badFragmentsDropped += Number(req.dropped);
        return { accepted: req.reports.length };
      },
      checkFragments: unsupported,
      verifyNamespaceToken: unsupported,
      watchClusterMap: async (_req, push, ctx) => {
        const queue: ClusterMapMsg[] = [this.clusterMapMsg()];
        let wake: (() => void) | undefined;
        const w = (m: ClusterMapMsg): void => {
          queue.push(m);
          wake?.();
        };
        this.#watchers.add(w);
        ctx.signal.addEventListener('abort', () => wake?.(), { once: true });
        try {
          while (!ctx.signal.aborted) {
            const m = queue.shift();
            if (m !== undefined) {
              await push(m);
              continue;
            }
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        } finally {
          this.#watchers.delete(w);
        }
      },
    };
  }

  async close(): Promise<void> {
    this.#release?.();
    await this.server?.close(500);
  }
}
