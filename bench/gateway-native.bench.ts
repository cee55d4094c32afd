/**
 * The gateway's native protocol (@tw/client's TwClient over the data transport) end to end: the
 * embedded cluster of `npm start` (startLocalCluster: 3 coordinators, 6 storage nodes, ec:4+2,
 * one gateway, child processes on loopback), PUT (async: acknowledged once in the DRAM tier) and
 * GET of 8 MiB blocks at 1 and 16 in flight, GETs cold (evicted from the DRAM tier: fragments
 * read from the storage nodes) and hot (DRAM tier). GETs read into one caller buffer per slot
 * (`get(key, {into})`).
 * Baseline in the same run, same sizes and in-flight counts: redis-server (started here, no
 * persistence) SET/GET through the gateway benchmark's Node RESP client, one connection per slot.
 * One TwClient (its pool of 4 connections) carries every slot. Throughput counts payload bytes
 * (1e9 B/s). BENCH_QUICK=1 moves 64 MiB per measurement instead of 128 MiB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TwClient, connectClient } from '@tw/client';
import { type LocalCluster, startLocalCluster } from '@tw/twctl';
import { RedisServer } from './lib/gateway-redis.js';
import { RespClient } from './lib/gateway-resp-client.js';
import { type Metric, percentile, quick, round, withBaseline } from './lib/harness.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const INFLIGHT = [1, 16];
const BYTES_PER_MEASUREMENT = (quick ? 64 : 128) * MiB;
/** The gateway's DRAM tier (as in the gateway benchmark): the cold set is made larger than it. */
const DRAM_TIER_BYTES = 160 * MiB;
const HOT_KEYS = 2;

interface Sample {
  gbps: number;
  p50Ms: number;
  p99Ms: number;
}

async function measure(count: number, inflight: number, op: (i: number, slot: number) => Promise<void>): Promise<Sample> {
  const lat: number[] = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async (_w, slot) => {
      while (next < count) {
        const i = next++;
        const s = process.hrtime.bigint();
        await op(i, slot);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const ns = Number(process.hrtime.bigint() - t0);
  return { gbps: (SIZE * count) / ns, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
}

function triple(name: string, s: Sample, base: string, b: Sample): Metric[] {
  return [
    withBaseline({ metric: name, value: round(s.gbps), unit: 'GB/s' }, base, b.gbps),
    withBaseline({ metric: `${name}.p50`, value: round(s.p50Ms), unit: 'ms' }, `${base}.p50`, b.p50Ms),
    withBaseline({ metric: `${name}.p99`, value: round(s.p99Ms), unit: 'ms' }, `${base}.p99`, b.p99Ms),
  ];
}

async function dramHits(http: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = /^tw_gateway_dram_hits ([0-9.e+]+)$/m.exec(text);
  return m === null ? NaN : Number(m[1]);
}

async function startCluster(dataDir: string): Promise<LocalCluster> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    // Away from the default cluster's ports and from the gateway benchmark's range.
    const basePort = 20_000 + Math.floor(Math.random() * 25) * 400;
    try {
      return await startLocalCluster({
        dataDir,
        basePort,
        coordinators: 3,
        storageNodes: 6,
        redundancy: 'ec:4+2',
        withGateway: true,
        gatewayDramTierBytes: DRAM_TIER_BYTES,
        print: (line) => process.stderr.write(`${line}\n`),
      });
    } catch (err) {
      lastErr = err;
      if (!(err as Error).message.includes('in use')) throw err;
    }
  }
  throw lastErr;
}

export default async function run(): Promise<Metric[]> {
  const out: Metric[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-bench-gwnative-'));
  const maxInflight = Math.max(...INFLIGHT);
  const count = (c: number): number => Math.max(c, Math.ceil(BYTES_PER_MEASUREMENT / SIZE));
  let cluster: LocalCluster | undefined;
  let redis: RedisServer | undefined;
  let client: TwClient | undefined;
  const rd: RespClient[] = [];
  try {
    const t0 = Date.now();
    redis = await RedisServer.start();
    cluster = await startCluster(dataDir);
    const http = cluster.gatewayHttp!;
    // The local cluster's gateway ports: HTTP, RESP, lm://, native, in that order.
    const nativeAddress = `127.0.0.1:${Number(new URL(http).port) + 3}`;
    client = await connectClient({ address: nativeAddress, namespace: 'default' });
    for (let i = 0; i < maxInflight; i++) rd.push(await RespClient.connect(redis.port));
    process.stderr.write(`  cluster and redis-server up in ${((Date.now() - t0) / 1000).toFixed(1)} s; native endpoint ${nativeAddress}\n`);
    const c = client;
    const value = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4096) value.writeUInt32LE((i ^ 0x9e3779b9) >>> 0, i);
    const into = Array.from({ length: maxInflight }, () => Buffer.alloc(SIZE));
    const nativeGet = async (key: string, slot: number): Promise<void> => {
      const v = await c.get(key, { into: into[slot]! });
      if (v?.length !== SIZE) throw new Error(`GET ${key}: ${v?.length ?? 'missing'}`);
    };
    const redisGet = async (slot: number, key: string): Promise<void> => {
      const n = await rd[slot]!.getLength(key);
      if (n !== SIZE) throw new Error(`redis GET ${key}: ${n}`);
    };
    // Warm-up: connections, JIT, first commits.
    for (let i = 0; i < 4; i++) {
      await c.put(`warm:${i}`, value);
      await nativeGet(`warm:${i}`, 0);
      await rd[0]!.set(`warm:${i}`, value);
      await redisGet(0, `warm:${i}`);
    }

    let seq = 0;
    const written: string[] = [];
    const results = new Map<string, { native: Sample; base: Sample; baseName: string }>();
    for (const inflight of INFLIGHT) {
      const n = count(inflight);
      const redisSet = await measure(n, inflight, (i, slot) => rd[slot]!.set(`redis:${i % 8}`, value));
      const put = await measure(n, inflight, async () => {
        const key = `blk:${seq++}`;
        await c.put(key, value);
        written.push(key);
      });
      results.set(`put.8MiB.c${inflight}`, { native: put, base: redisSet, baseName: `redis.set.8MiB.c${inflight}` });
    }
    // Filler so the cold set (every block but the newest DRAM-tier's worth) is read once each.
    const coldNeeded = INFLIGHT.reduce((s, x) => s + count(x), 0);
    const dramBlocks = Math.ceil(DRAM_TIER_BYTES / SIZE) + 4;
    while (written.length < coldNeeded + dramBlocks) {
      const key = `blk:${seq++}`;
      await c.put(key, value);
      written.push(key);
    }
    const cold = written.slice(0, written.length - dramBlocks);
    let coldNext = 0;
    const hits0 = await dramHits(http);
    for (const inflight of INFLIGHT) {
      const n = count(inflight);
      const base = await measure(n, inflight, (i, slot) => redisGet(slot, `redis:${i % 8}`));
      const get = await measure(n, inflight, (_i, slot) => nativeGet(cold[coldNext++ % cold.length]!, slot));
      results.set(`get.cold.8MiB.c${inflight}`, { native: get, base, baseName: `redis.get.8MiB.c${inflight}` });
    }
    const hits1 = await dramHits(http);
    const hot = Array.from({ length: HOT_KEYS }, (_v, j) => `hot:${j}`);
    for (const k of hot) await c.put(k, value);
    for (const inflight of INFLIGHT) {
      const n = count(inflight);
      const base = await measure(n, inflight, (i, slot) => redisGet(slot, `redis:${i % 8}`));
      const get = await measure(n, inflight, (i, slot) => nativeGet(hot[i % hot.length]!, slot));
      results.set(`get.hot.8MiB.c${inflight}`, { native: get, base, baseName: `redis.get.8MiB.c${inflight}` });
    }
    const hits2 = await dramHits(http);
    const coldOps = INFLIGHT.reduce((s, x) => s + count(x), 0);
    out.push({ metric: 'check.native.get.cold.8MiB.dram_hit_fraction', value: round((hits1 - hits0) / coldOps), unit: 'ratio' });
    out.push({ metric: 'check.native.get.hot.8MiB.dram_hit_fraction', value: round((hits2 - hits1) / coldOps), unit: 'ratio' });
    for (const [name, r] of results) out.push(...triple(`native.${name}`, r.native, r.baseName, r.base));
    return out;
  } finally {
    for (const r of rd) r.close();
    await client?.close().catch(() => undefined);
    const stops: Promise<unknown>[] = [];
    if (cluster !== undefined) stops.push(cluster.stop().catch((err: unknown) => process.stderr.write(`cluster stop: ${String(err)}\n`)));
    if (redis !== undefined) stops.push(redis.stop());
    await Promise.all(stops);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
