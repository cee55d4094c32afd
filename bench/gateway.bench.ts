/**
 * The gateway end to end (issue 6, item 6): the embedded cluster (`startLocalCluster`: 3
 * coordinators, 6 storage nodes, ec:4+2, one gateway, all child processes on loopback), driven
 * through the gateway's three byte-carrying front-ends: RESP, the HTTP API, and the native protocol
 * (@tw/client, one client with its connection pool; GETs read into one caller buffer per slot). PUT (async mode: acknowledged once in the
 * DRAM tier) and GET throughput and p50/p99 latency for 2, 8 and 32 MiB blocks at 1, 4 and 16 in
 * flight; GETs cold (blocks evicted from the DRAM tier: 4 fragment reads from the storage nodes,
 * verification, assembly) and hot (DRAM tier).
 * Baselines in the same run, same sizes and in-flight counts: redis-server (Debian's, started
 * here, no persistence) SET/GET through the same Node RESP client (one connection per in-flight
 * request, as for the gateway), and raw node:net between two processes (RawTcp).
 * The main figures (`put.*`, `get.cold.*`, `get.hot.*`) take the fastest front-end;
 * `gateway.resp.*`, `gateway.http.*` and `gateway.native.*` report each. Throughput counts payload bytes (1e9 B/s).
 * BENCH_QUICK=1: 8 MiB blocks at 1 and 16 in flight only, 48 MiB per measurement. Otherwise each
 * measurement moves 128 MiB (at least one operation per in-flight slot).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The embedded cluster of `npm start` (apps/twctl) is what this benchmark drives; bench/ is tagged
// type:app, which the boundary rule keeps off other apps (the lead may add a bench/ override).
import { type TwClient, connectClient } from '@tw/client';
import { type LocalCluster, startLocalCluster } from '@tw/twctl';
import { RespClient } from './lib/gateway-resp-client.js';
import { RedisServer } from './lib/gateway-redis.js';
import { type Metric, percentile, quick, round, withBaseline } from './lib/harness.js';
import { RawTcp } from './lib/raw-baselines.js';

const MiB = 1024 * 1024;
const SIZES = quick ? [8 * MiB] : [2 * MiB, 8 * MiB, 32 * MiB];
const INFLIGHT = quick ? [1, 16] : [1, 4, 16];
/** Payload bytes moved by one measurement (at least `inflight` operations). */
const BYTES_PER_MEASUREMENT = quick ? 48 * MiB : 128 * MiB;
/** The gateway's DRAM tier: holds the hot set (2 blocks of the largest size) with room to spare. */
const DRAM_TIER_BYTES = 160 * MiB;
/** Blocks per size kept hot (read over and over). */
const HOT_KEYS = 2;

interface Sample {
  gbps: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `count` operations, `inflight` at once (worker w runs its operations on slot w). */
async function measure(size: number, count: number, inflight: number, op: (i: number, slot: number) => Promise<void>): Promise<Sample> {
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
  return { gbps: (size * count) / ns, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
}

function label(size: number, inflight: number): string {
  return `${size / MiB}MiB.c${inflight}`;
}

/** GB/s, p50 and p99 of one measurement, each against the same figure of a baseline. */
function triple(name: string, s: Sample, baseName: string | undefined, b: Sample | undefined): Metric[] {
  const ms: [string, number, 'GB/s' | 'ms', number | undefined][] = [
    [name, s.gbps, 'GB/s', b?.gbps],
    [`${name}.p50`, s.p50Ms, 'ms', b?.p50Ms],
    [`${name}.p99`, s.p99Ms, 'ms', b?.p99Ms],
  ];
  return ms.map(([metric, value, unit, bv], i) => {
    const m: Metric = { metric, value: round(value), unit };
    if (baseName === undefined || bv === undefined) return m;
    return withBaseline(m, `${baseName}${i === 0 ? '' : i === 1 ? '.p50' : '.p99'}`, bv);
  });
}

async function gatewayStats(http: string): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const read = (name: string): number => {
    const m = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
    return m === null ? NaN : Number(m[1]);
  };
  return { hits: read('tw_gateway_dram_hits'), misses: read('tw_gateway_dram_misses') };
}

async function startCluster(dataDir: string): Promise<LocalCluster> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    // A base port well away from the default cluster's and from other benchmarks'.
    const basePort = 31_000 + Math.floor(Math.random() * 60) * 400;
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
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-bench-gateway-'));
  const maxInflight = Math.max(...INFLIGHT);
  let cluster: LocalCluster | undefined;
  let redis: RedisServer | undefined;
  let raw: RawTcp | undefined;
  const clients: RespClient[] = [];
  let native: TwClient | undefined;
  try {
    const t0 = Date.now();
    // Started one by one so that whatever did start is stopped below if a later one fails.
    redis = await RedisServer.start();
    raw = await RawTcp.start();
    cluster = await startCluster(dataDir);
    process.stderr.write(`  cluster, redis-server and the raw TCP peer up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const http = cluster.gatewayHttp!;
    const gwRespPort = Number(new URL(http).port) + 1;
    const gw: RespClient[] = [];
    const rd: RespClient[] = [];
    for (let i = 0; i < maxInflight; i++) {
      gw.push(await RespClient.connect(gwRespPort));
      rd.push(await RespClient.connect(redis.port));
    }
    clients.push(...gw, ...rd);
    // The local cluster's gateway ports: HTTP, RESP, lm://, native, in that order.
    native = await connectClient({ address: `127.0.0.1:${Number(new URL(http).port) + 3}`, namespace: 'default' });
    const nat = native;
    const intos = Array.from({ length: maxInflight }, () => Buffer.alloc(Math.max(...SIZES)));
    const nativeGet = async (slot: number, key: string, size: number): Promise<void> => {
      const v = await nat.get(key, { into: intos[slot]! });
      if (v?.length !== size) throw new Error(`native GET ${key}: ${v?.length ?? 'missing'} bytes, expected ${size}`);
    };
    const blockUrl = (key: string): string => `${http}/v1/namespaces/default/blocks/${encodeURIComponent(key)}`;
    const httpPut = async (key: string, value: Buffer): Promise<void> => {
      const r = await fetch(blockUrl(key), { method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' } });
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`HTTP PUT ${key}: ${r.status}`);
    };
    const httpGet = async (key: string, size: number): Promise<void> => {
      const r = await fetch(blockUrl(key));
      const body = await r.arrayBuffer();
      if (!r.ok || body.byteLength !== size) throw new Error(`HTTP GET ${key}: ${r.status}, ${body.byteLength} bytes`);
    };
    const respGet = async (c: RespClient, key: string, size: number): Promise<void> => {
      const n = await c.getLength(key);
      if (n !== size) throw new Error(`GET ${key}: ${n} bytes, expected ${size}`);
    };
    // Warm-up: connections, JIT, the gateway's first commits.
    const warm = Buffer.alloc(MiB, 1);
    for (let i = 0; i < 4; i++) {
      await gw[0]!.set(`warm:${i}`, warm);
      await httpPut(`warm-http:${i}`, warm);
      await rd[0]!.set(`warm:${i}`, warm);
      await respGet(gw[0]!, `warm:${i}`, MiB);
      await httpGet(`warm-http:${i}`, MiB);
      await respGet(rd[0]!, `warm:${i}`, MiB);
      await nat.put(`warm-native:${i}`, warm);
      await nativeGet(0, `warm-native:${i}`, MiB);
    }
    await raw.warmUp();

    let keySeq = 0;
    for (const size of SIZES) {
      const value = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4096) value.writeUInt32LE((i ^ 0x9e3779b9) >>> 0, i);
      const written: string[] = [];
      const countFor = (inflight: number): number => Math.max(inflight, Math.ceil(BYTES_PER_MEASUREMENT / size));
      // Redis keys: a few per size, overwritten (the server keeps everything in memory).
      const redisKey = (i: number): string => `redis:${size}:${i % 8}`;
      const base = new Map<string, { redisSet: Sample; redisGet: Sample; rawSend: number; rawRecv: number }>();
      type ByFrontend = { resp: Sample; http: Sample; native: Sample };
      const put = new Map<number, ByFrontend>();
      // 1. Baselines and puts, per in-flight count.
      for (const c of INFLIGHT) {
        const count = countFor(c);
        const redisSet = await measure(size, count, c, (i, slot) => rd[slot]!.set(redisKey(i), value));
        const redisGet = await measure(size, count, c, (i, slot) => respGet(rd[slot]!, redisKey(i), size));
        const rawSend = await raw.send(size, count, c);
        const rawRecv = await raw.receive(size, count, c);
        base.set(label(size, c), { redisSet, redisGet, rawSend, rawRecv });
        const resp = await measure(size, count, c, async (_i, slot) => {
          const key = `blk:${keySeq++}`;
          await gw[slot]!.set(key, value);
          written.push(key);
        });
        const httpS = await measure(size, count, c, async () => {
          const key = `blk:${keySeq++}`;
          await httpPut(key, value);
          written.push(key);
        });
        const nativeS = await measure(size, count, c, async () => {
          const key = `blk:${keySeq++}`;
          await nat.put(key, value);
          written.push(key);
        });
        put.set(c, { resp, http: httpS, native: nativeS });
      }
      // 2. Cold gets: every block but the last ones written (which may still sit in the DRAM tier).
      const cold = written.slice(0, Math.max(1, written.length - Math.ceil(DRAM_TIER_BYTES / size) - 4));
      const coldStats0 = await gatewayStats(http);
      let coldOps = 0;
      const coldRes = new Map<number, ByFrontend>();
      for (const c of INFLIGHT) {
        const count = countFor(c);
        const resp = await measure(size, count, c, (i, slot) => respGet(gw[slot]!, cold[(i * 7) % cold.length]!, size));
        const httpS = await measure(size, count, c, (i) => httpGet(cold[(i * 7 + 3) % cold.length]!, size));
        const nativeS = await measure(size, count, c, (i, slot) => nativeGet(slot, cold[(i * 7 + 5) % cold.length]!, size));
        coldOps += 3 * count;
        coldRes.set(c, { resp, http: httpS, native: nativeS });
      }
      const coldStats1 = await gatewayStats(http);
      // 3. Hot gets: a few blocks just put, read over and over from the DRAM tier.
      const hot = Array.from({ length: HOT_KEYS }, (_v, j) => `hot:${size}:${j}`);
      for (const k of hot) await gw[0]!.set(k, value);
      const hotRes = new Map<number, ByFrontend>();
      let hotOps = 0;
      for (const c of INFLIGHT) {
        const count = countFor(c);
        const resp = await measure(size, count, c, (i, slot) => respGet(gw[slot]!, hot[i % hot.length]!, size));
        const httpS = await measure(size, count, c, (i) => httpGet(hot[i % hot.length]!, size));
        const nativeS = await measure(size, count, c, (i, slot) => nativeGet(slot, hot[i % hot.length]!, size));
        hotOps += 3 * count;
        hotRes.set(c, { resp, http: httpS, native: nativeS });
      }
      const hotStats = await gatewayStats(http);
      const sz = `${size / MiB}MiB`;
      // Where the reads were served from (cold: 0 DRAM hits expected; hot: all of them).
      out.push({ metric: `check.get.cold.${sz}.dram_hit_fraction`, value: round((coldStats1.hits - coldStats0.hits) / coldOps), unit: 'ratio' });
      out.push({ metric: `check.get.hot.${sz}.dram_hit_fraction`, value: round((hotStats.hits - coldStats1.hits) / hotOps), unit: 'ratio' });
      for (const c of INFLIGHT) {
        const l = label(size, c);
        const b = base.get(l)!;
        const p = put.get(c)!;
        const g = coldRes.get(c)!;
        const h = hotRes.get(c)!;
        const frontends = ['resp', 'http', 'native'] as const;
        const best = (x: ByFrontend): [(typeof frontends)[number], Sample] => {
          let top: (typeof frontends)[number] = 'resp';
          for (const f of frontends) if (x[f].gbps > x[top].gbps) top = f;
          return [top, x[top]];
        };
        // Main figures: the faster front-end, against Redis.
        for (const [what, x, bs, bn] of [
          ['put', p, b.redisSet, 'redis.set'],
          ['get.cold', g, b.redisGet, 'redis.get'],
          ['get.hot', h, b.redisGet, 'redis.get'],
        ] as const) {
          const [fe, s] = best(x);
          out.push(...triple(`${what}.${l}`, s, `${bn}.${l}`, bs));
          process.stderr.write(`  ${what}.${l}: fastest front-end ${fe}\n`);
          // Against raw TCP (the ceiling of any TCP data path).
          const rawV = what === 'put' ? b.rawSend : b.rawRecv;
          out.push(withBaseline({ metric: `${what}.${l}.vs_raw_tcp`, value: round(s.gbps), unit: 'GB/s' }, `raw_tcp.${what === 'put' ? 'send' : 'receive'}.${l}`, rawV));
          for (const feName of frontends) out.push(...triple(`gateway.${feName}.${what}.${l}`, x[feName], `${bn}.${l}`, bs));
        }
        out.push(...triple(`redis.set.${l}`, b.redisSet, undefined, undefined).map((m, i) => (i === 0 ? withBaseline(m, `raw_tcp.send.${l}`, b.rawSend) : m)));
        out.push(...triple(`redis.get.${l}`, b.redisGet, undefined, undefined).map((m, i) => (i === 0 ? withBaseline(m, `raw_tcp.receive.${l}`, b.rawRecv) : m)));
        out.push({ metric: `raw_tcp.send.${l}`, value: round(b.rawSend), unit: 'GB/s' });
        out.push({ metric: `raw_tcp.receive.${l}`, value: round(b.rawRecv), unit: 'GB/s' });
      }
      process.stderr.write(`  ${sz} done at ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    return out;
  } finally {
    for (const c of clients) c.close();
    await native?.close();
    const stops: Promise<unknown>[] = [];
    if (cluster !== undefined) stops.push(cluster.stop().catch((err: unknown) => process.stderr.write(`cluster stop: ${String(err)}\n`)));
    if (redis !== undefined) stops.push(redis.stop());
    if (raw !== undefined) stops.push(raw.stop());
    await Promise.all(stops);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
