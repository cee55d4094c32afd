/**
 * Gateway data path (libs/gateway-core): put and get throughput of 8 MiB blocks at 1 and 16 in
 * flight against 6 in-process storage nodes (ec:4+2, loopback TCP, real extent stores) and the
 * block-map coordinator fixture: puts `sync` (encode + 6 fragment writes + batched commit) and
 * `async` (DRAM accept), gets cold (a gateway with an empty DRAM tier: 4 fragment reads,
 * verification, assembly) and hot (DRAM tier, copied into the caller's buffer).
 * Baselines in the same run: memcpy of 8 MiB, and raw FragmentClient puts (the same 6 fragments)
 * and gets (the same 4 data fragments) to the same nodes. Throughput counts payload bytes.
 */
import { checksum64, keyHash64 } from '@tw/block-format';
import { createCodec } from '@tw/erasure';
import { FragmentClient } from '@tw/fragment-protocol';
import { tcpTransport } from '@tw/transport-tcp';
// The in-process test cluster (storage nodes + block-map coordinator fixture) of gateway-core's
// tests. bench/ is tagged scope:shared, so the gateway import is allowed here explicitly, as in
// extent-store.bench.ts (the lead may retag bench/ instead).
import { TestCluster, seededBytes } from '@tw/gateway-core/testing';
import { type Metric, memcpyGBps, percentile, round, scale, withBaseline } from './lib/harness.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const INFLIGHT = [1, 16];

async function pool(count: number, inflight: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return Number(process.hrtime.bigint() - t0);
}

export default async function run(): Promise<Metric[]> {
  const count = scale(64, 16);
  const out: Metric[] = [];
  // The ceiling of a hot get (one copy into the caller's buffer).
  const memcpyHot = await memcpyGBps(SIZE);
  const cluster = await TestCluster.start(6);
  const transport = tcpTransport()({});
  try {
    const value = seededBytes(SIZE, 1);
    const codec = createCodec({ kind: 'ec', k: 4, m: 2 });
    // Raw FragmentClient baseline: the same fragments to the same nodes, no gateway; each raw
    // phase runs right before the gateway phase it is compared with (the machine is shared).
    const fragments = await codec.encode(Buffer.from(value));
    const clients = await Promise.all(cluster.nodes.map(async (n) => new FragmentClient(await transport.dial(n.address))));
    const raw = new Map<string, number>();
    const rawPut = async (inflight: number): Promise<void> => {
      const ids = (i: number, f: number) => ({ namespace: 'default', key: Buffer.from(`raw-${inflight}-${i}`), version: 1n, index: f });
      const putNs = await pool(count, inflight, async (i) => {
        const kh = keyHash64('default', Buffer.from(`raw-${inflight}-${i}`));
        await Promise.all(
          fragments.map((bytes, f) =>
            clients[f]!.put(ids(i, f), { redundancy: { kind: 'ec', k: 4, m: 2 }, fragmentIndex: f, fragmentLength: bytes.length, keyHash: kh, blockVersion: 1n, payloadLength: SIZE, fragmentChecksum: checksum64(bytes) }, bytes),
          ),
        );
      });
      raw.set(`put.c${inflight}`, (SIZE * count) / putNs);
    };
    const rawGet = async (inflight: number): Promise<void> => {
      const ids = (i: number, f: number) => ({ namespace: 'default', key: Buffer.from(`raw-${inflight}-${i}`), version: 1n, index: f });
      const intos = Array.from({ length: inflight }, () => Array.from({ length: 4 }, () => Buffer.allocUnsafe(SIZE / 4 + 64)));
      let slot = 0;
      const getNs = await pool(count, inflight, async (i) => {
        const bufs = intos[slot++ % inflight]!;
        await Promise.all([0, 1, 2, 3].map((f) => clients[f]!.get(ids(i, f), { into: bufs[f]! })));
      });
      raw.set(`get.c${inflight}`, (SIZE * count) / getNs);
    };
    const writer = await cluster.gateway({ dramTierBytes: (2 * count + 8) * SIZE, dramLeaseMs: 600_000, inflightBytesMax: 1024 * MiB, fragmentTimeoutMs: 60_000 });
    const reader = await cluster.gateway({ dramTierBytes: 64 * MiB, inflightBytesMax: 1024 * MiB, fragmentTimeoutMs: 60_000 });
    for (const inflight of INFLIGHT) {
      const c = `8MiB.c${inflight}`;
      await rawPut(inflight);
      const putNs = await pool(count, inflight, async (i) => {
        await writer.put('default', Buffer.from(`gw-sync-${inflight}-${i}`), value, { mode: 'sync' });
      });
      out.push(withBaseline({ metric: `put_sync.${c}`, value: round((SIZE * count) / putNs), unit: 'GB/s' }, `raw_fragment_put.${c}`, raw.get(`put.c${inflight}`)!));
      const committed: Promise<unknown>[] = [];
      const asyncNs = await pool(count, inflight, async (i) => {
        committed.push((await writer.put('default', Buffer.from(`gw-async-${inflight}-${i}`), value, { mode: 'async' })).committed);
      });
      await Promise.all(committed);
      out.push(withBaseline({ metric: `put_async_accept.${c}`, value: round((SIZE * count) / asyncNs), unit: 'GB/s' }, 'memcpy.8MiB', memcpyHot));
      await rawGet(inflight);
      const intos = Array.from({ length: inflight }, () => Buffer.allocUnsafe(SIZE));
      for (const [label, gw] of [['cold', reader], ['hot', writer]] as const) {
        const lat: number[] = [];
        let slot = 0;
        const dramHitsBefore = gw.stats().dramHits;
        const getNs = await pool(count, inflight, async (i) => {
          const s = performance.now();
          const got = await gw.get('default', Buffer.from(`gw-sync-${inflight}-${i}`), { into: intos[slot++ % inflight]! });
          if (got?.length !== SIZE) throw new Error('missing block');
          lat.push(performance.now() - s);
        });
        const gbps = (SIZE * count) / getNs;
        const dramHits = gw.stats().dramHits - dramHitsBefore;
        if (dramHits !== (label === 'hot' ? count : 0)) throw new Error(`${label} get phase had ${dramHits} DRAM hits of ${count}`);
        if (label === 'cold') out.push(withBaseline({ metric: `get_cold.${c}`, value: round(gbps), unit: 'GB/s' }, `raw_fragment_get.${c}`, raw.get(`get.c${inflight}`)!));
        else out.push(withBaseline({ metric: `get_hot.${c}`, value: round(gbps), unit: 'GB/s' }, 'memcpy.8MiB', memcpyHot));
        out.push({ metric: `get_${label}.${c}.p50`, value: round(percentile(lat, 50)), unit: 'ms' });
        out.push({ metric: `get_${label}.${c}.p99`, value: round(percentile(lat, 99)), unit: 'ms' });
      }
    }
    console.error(`cold reader: ${reader.stats().hedgedReads} hedged reads, ${reader.stats().degradedReads} degraded`);
    out.push({ metric: 'baseline.memcpy.8MiB', value: round(memcpyHot), unit: 'GB/s' });
    for (const [k, v] of raw) out.push({ metric: `baseline.raw_fragment_${k}`, value: round(v), unit: 'GB/s' });
  } finally {
    await transport.close();
    await cluster.close();
  }
  return out;
}
