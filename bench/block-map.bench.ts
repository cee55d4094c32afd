/**
 * The block map's apply and lookup costs (issue 5: >= 20,000 block commits/s on 3 replicas,
 * LookupPrefix of 1,024 keys p50 < 5 ms; this measures one replica's state machine, without Raft
 * or gRPC).
 *
 * - commit_blocks.{memory,level}.batch256: CommitBlocks commands of 256 new records each (48-byte
 *   keys, ec:4+2, one client with increasing seqs), pre-encoded, applied one after another: the
 *   rate of records through apply (read existing records with one getMany, dedup lookup, one
 *   atomic batch). Baseline: raw classic-level batch puts of the same number of records with the
 *   same key and value sizes, 256 per batch, in a separate database of the same run.
 * - lookup_prefix.{memory,level}.1024keys.p50/p99: lookupPrefix of 1,024 committed keys of a
 *   map holding all the records committed above. Baseline: raw classic-level getMany of the same
 *   1,024 stored keys (no decoding).
 * - commit_blocks.cached.batch256 and lookup_prefix.coordinator_path.1024keys.p50/p99: the
 *   coordinator's own path, on its record cache over classic-level (as apps/coordinator opens it):
 *   apply as above; a lookup is packed keys in, decodeWireKeys, lookupPrefixStored and
 *   packStoredRecords out (the answer's bytes), as a LookupPrefix with packed records is served
 *   after its ReadIndex round.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
// The bench project is tagged scope:shared; benchmarks measure libs of every scope.
import { type BlockCommit, type BlockMap, type KvStore, cachingKvStore, encodeCommand, isBlockRecordKey, levelKvStore, memoryKvStore, openBlockMap } from '@tw/block-map';
import { packStoredRecords } from '@tw/coordinator-service';
import { decodeWireKeys, encodeWireKeys } from '@tw/rpc';
import { type Metric, percentile, round, scale, withBaseline } from './lib/harness.js';

const BATCH = 256;
const NODES = ['sn-0', 'sn-1', 'sn-2', 'sn-3', 'sn-4', 'sn-5', 'sn-6', 'sn-7'];
const LOOKUP_KEYS = 1024;

function keyOf(i: number): Uint8Array {
  // LMCache-like: model@rank@chunk-hash, 48 bytes.
  return Buffer.from(`llama-3.1-8b@0@${i.toString(16).padStart(16, '0')}${'f'.repeat(16)}`, 'latin1');
}

function commitBatch(first: number, clientSeq: number, nowMs: number): Uint8Array {
  const blocks: BlockCommit[] = [];
  for (let i = 0; i < BATCH; i++) {
    blocks.push({
      key: keyOf(first + i),
      sizeBytes: 32 * 1024 * 1024,
      checksum: BigInt(first + i) * 0x9e3779b97f4a7c15n & 0xffff_ffff_ffff_ffffn,
      fragmentNodes: NODES.slice((first + i) % 3, ((first + i) % 3) + 6),
    });
  }
  return encodeCommand({ clientId: 1, seq: clientSeq, nowMs, command: { op: 'commit-blocks', namespace: 'bench', blocks } });
}

async function setup(map: BlockMap): Promise<number> {
  let index = 0;
  const sys = (command: Parameters<typeof encodeCommand>[0]['command']): Promise<unknown> => map.apply(++index, encodeCommand({ clientId: 0, seq: 0, nowMs: 1, command }));
  await sys({ op: 'init-cluster', rules: { pgCount: 4096, domainLevels: ['host'], redundancy: { kind: 'ec', k: 4, m: 2 }, failureDomain: 'host', domainCapMax: 0 } });
  for (let i = 0; i < NODES.length; i++) await sys({ op: 'register-node', id: NODES[i]!, address: `10.0.0.${i}:7400`, domain: `host-${i}`, weight: 1 });
  await sys({ op: 'create-namespace', name: 'bench', quotaBytes: null, defaultTtlMs: 0, redundancy: { kind: 'ec', k: 4, m: 2 }, tokenHash: new Uint8Array(32) });
  return index;
}

/** Applies `batches` pre-encoded commit batches; returns records per second. */
async function commitRate(map: BlockMap, startIndex: number, batches: number): Promise<number> {
  const cmds = Array.from({ length: batches }, (_, b) => commitBatch(b * BATCH, b + 1, 1000 + b));
  let index = startIndex;
  const t0 = process.hrtime.bigint();
  for (const c of cmds) {
    const r = await map.apply(++index, c);
    if (!r.result.ok) throw new Error(`commit failed: ${r.result.code} ${r.result.message}`);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return (batches * BATCH) / s;
}

function lookupKeys(totalRecords: number, r: number): Uint8Array[] {
  const start = (r * 7919) % Math.max(1, totalRecords - LOOKUP_KEYS);
  return Array.from({ length: LOOKUP_KEYS }, (_, i) => keyOf(start + i));
}

export default async function (): Promise<Metric[]> {
  const batches = scale(400, 80);
  const lookups = scale(300, 60);
  const records = batches * BATCH;
  const dir = await mkdtemp(join(tmpdir(), 'tw-bench-block-map-'));
  const dbs: ClassicLevel<Uint8Array, Uint8Array>[] = [];
  const open = async (name: string): Promise<ClassicLevel<Uint8Array, Uint8Array>> => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, name), { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    dbs.push(db);
    return db;
  };
  try {
    const out: Metric[] = [];

    // Raw classic-level baseline: the same number of records, same key / value sizes, 256 per batch.
    const rawDb = await open('raw');
    const sampleStore: KvStore = memoryKvStore();
    const sample = await openBlockMap(sampleStore);
    const sampleIndex = await setup(sample);
    await sample.apply(sampleIndex + 1, commitBatch(0, 1, 1000));
    // The stored key of a block is 02 | nsLen | ns | key (libs/block-map/src/keys.ts); use a real
    // stored value's size for the raw puts.
    const rawKey = (i: number): Uint8Array => Buffer.concat([Buffer.from([2, 5]), Buffer.from('bench'), keyOf(i)]);
    const valueBytes = Buffer.alloc((await sampleStore.get(rawKey(0)))!.byteLength, 1);
    const rawBatches = Array.from({ length: batches }, (_, b) => Array.from({ length: BATCH }, (_, i) => ({ type: 'put' as const, key: rawKey(b * BATCH + i), value: valueBytes })));
    const t0 = process.hrtime.bigint();
    for (const ops of rawBatches) await rawDb.batch(ops);
    const rawRate = records / (Number(process.hrtime.bigint() - t0) / 1e9);

    // Block map on classic-level.
    const levelDb = await open('map');
    const levelMap = await openBlockMap(levelKvStore(levelDb));
    const levelRate = await commitRate(levelMap, await setup(levelMap), batches);
    out.push(withBaseline({ metric: 'commit_blocks.level.batch256', value: round(levelRate), unit: 'ops/s' }, 'classic_level.batch_put.batch256', rawRate));

    // The coordinator's path: its record cache over classic-level.
    const cachedDb = await open('cached');
    const cachedMap = await openBlockMap(cachingKvStore(levelKvStore(cachedDb), { cacheable: isBlockRecordKey, adoptWrites: true }));
    const cachedRate = await commitRate(cachedMap, await setup(cachedMap), batches);
    out.push(withBaseline({ metric: 'commit_blocks.cached.batch256', value: round(cachedRate), unit: 'ops/s' }, 'classic_level.batch_put.batch256', rawRate));

    // Block map on the memory store.
    const memMap = await openBlockMap(memoryKvStore());
    const memRate = await commitRate(memMap, await setup(memMap), batches);
    out.push(withBaseline({ metric: 'commit_blocks.memory.batch256', value: round(memRate), unit: 'ops/s' }, 'classic_level.batch_put.batch256', rawRate));

    // lookupPrefix of 1,024 committed keys vs raw getMany of the same stored keys, interleaved
    // (so that background compaction after the commits above weighs on both alike).
    const storedKeys = (r: number): Uint8Array[] => lookupKeys(records, r).map((k) => Buffer.concat([Buffer.from([2, 5]), Buffer.from('bench'), k]));
    const levelTimes: number[] = [];
    const rawTimes: number[] = [];
    const memTimes: number[] = [];
    const pathTimes: number[] = [];
    const timed = async (xs: number[] | null, fn: () => Promise<void>): Promise<void> => {
      const t = process.hrtime.bigint();
      await fn();
      if (xs !== null) xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    };
    for (let r = 0; r < lookups + 20; r++) {
      const warm = r < 20;
      const keys = lookupKeys(records, r);
      const raw = storedKeys(r);
      await timed(warm ? null : levelTimes, async () => {
        const res = await levelMap.lookupPrefix('bench', keys);
        if (res.count !== LOOKUP_KEYS) throw new Error(`lookup found ${res.count}`);
      });
      await timed(warm ? null : rawTimes, async () => {
        const vs = await levelDb.getMany(raw);
        if (vs.some((v) => v === undefined)) throw new Error('raw getMany missed');
      });
      await timed(warm ? null : memTimes, async () => {
        const res = await memMap.lookupPrefix('bench', keys);
        if (res.count !== LOOKUP_KEYS) throw new Error(`lookup found ${res.count}`);
      });
      const packed = encodeWireKeys(keys);
      await timed(warm ? null : pathTimes, async () => {
        const ks = decodeWireKeys(packed);
        const res = await cachedMap.lookupPrefixStored('bench', ks);
        if (res.count !== LOOKUP_KEYS) throw new Error(`lookup found ${res.count}`);
        if (packStoredRecords(ks, res, (i) => cachedMap.nodeIdOf(i)).byteLength === 0) throw new Error('empty answer');
      });
    }
    for (const p of [50, 99] as const) {
      const raw = percentile(rawTimes, p);
      out.push(withBaseline({ metric: `lookup_prefix.level.1024keys.p${p}`, value: round(percentile(levelTimes, p)), unit: 'ms' }, `classic_level.get_many.1024keys.p${p}`, raw));
      out.push(withBaseline({ metric: `lookup_prefix.memory.1024keys.p${p}`, value: round(percentile(memTimes, p)), unit: 'ms' }, `classic_level.get_many.1024keys.p${p}`, raw));
      out.push(withBaseline({ metric: `lookup_prefix.coordinator_path.1024keys.p${p}`, value: round(percentile(pathTimes, p)), unit: 'ms' }, `classic_level.get_many.1024keys.p${p}`, raw));
    }
    return out;
  } finally {
    for (const db of dbs) await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}
