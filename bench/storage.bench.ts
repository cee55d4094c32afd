/**
 * Storage node data path (issue 3): fragment put and get GB/s and p50/p99 latency for 256 KiB,
 * 1 MiB and 8 MiB fragments at 1 and 16 in flight; client (this process) and node (a child
 * process) talk over loopback TCP. Baselines in the same run: raw node:net between two processes
 * (same sizes, same in-flight count, warmed up like the node) and raw sequential file write/read
 * with the node's group-commit policy (one fdatasync at a time, each covering the writes made
 * before it starts, at most one per extentLimits.GROUP_COMMIT_MS_DEFAULT ms). Each cell runs
 * ROUNDS paired rounds (baselines next to the path they are compared with, every round) and
 * reports the round with the median ratio, plus the lowest and highest ratio of the rounds
 * (`.ratio.min` / `.ratio.max`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checksum64, keyHash64 } from '@tw/block-format';
import { extentLimits } from '@tw/extent-store';
import { FragmentClient, type FragmentId } from '@tw/fragment-protocol';
import { tcpTransport } from '@tw/transport-tcp';
import { type Metric, percentile, round, scale, withBaseline } from './lib/harness.js';
import { withCpu } from './lib/cpu-time.js';
import { RawTcp, rawDisk, spawnTs, stopChild } from './lib/raw-baselines.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES: Array<[string, number]> = [['256KiB', 256 * KiB], ['1MiB', MiB], ['8MiB', 8 * MiB]];
const INFLIGHT = [1, 16];
/** Paired rounds per cell (ours and every baseline in each); the median round is reported. */
const ROUNDS = 3;

interface Round {
  putGBps: number;
  getGBps: number;
  tcpSend: number;
  tcpRecv: number;
  diskWrite: number;
  putLat: number[];
  getLat: number[];
  /** CPU ms of client + node during the timed puts / gets, and of client + raw peer during the raw receive. */
  putCpuMs: number | undefined;
  getCpuMs: number | undefined;
  tcpRecvCpuMs: number | undefined;
}

/** The element whose key is the median (the lower middle for an even count). */
function medianBy<T>(xs: readonly T[], key: (x: T) => number): T {
  const sorted = [...xs].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

export default async function run(): Promise<Metric[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-storage-'));
  const out: Metric[] = [];
  const raw = await RawTcp.start();
  const { child, hello } = await spawnTs(
    join(root, 'apps/storage-node/src/main.ts'),
    ['--data-dir', join(dir, 'node'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
    (l) => l['msg'] === 'storage node ready',
  );
  const transport = tcpTransport()({});
  try {
    await raw.warmUp();
    const client = new FragmentClient(await transport.dial(String(hello['dataAddress'])));
    // CPU accounting: this process (the client) plus the node, or plus the raw TCP peer.
    const nodePids = child.pid === undefined ? [] : [process.pid, child.pid];
    const rawPids = raw.pid === undefined ? [] : [process.pid, raw.pid];
    await warmUpNode(client, String(hello['adminUrl']));
    let version = 0n;
    for (const [label, size] of SIZES) {
      const bytes = Buffer.alloc(size, 0x5c);
      const key = Buffer.from(`bench-${label}`);
      // Once per size, as a writer hashes each fragment once (not inside the timed loop).
      const sum = checksum64(bytes);
      const header = (v: bigint, i: number) => fragmentHeader(size, keyHash64('bench', Buffer.concat([key, Buffer.from(String(i))])), v, sum);
      for (const inflight of INFLIGHT) {
        const c = `${label}.c${inflight}`;
        // Per round: enough bytes for a steady rate (256 MiB, 64 quick), at least 32 fragments, and
        // at least 8 (4 quick) times the in-flight count. With 8 MiB x16 a 256 MiB round was two
        // waves of 16: mostly the first response's wait and the last one's drain, not a rate
        // (steady 8 MiB x16 gets measured x0.70-0.79 of raw TCP where 2-wave rounds gave x0.61-0.69).
        const count = Math.max(32, Math.floor(scale(256 * MiB, 64 * MiB) / size), scale(8, 4) * inflight);
        const rounds: Round[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          // Each baseline runs next to the path it is compared with, in every round: this VM's
          // disk and loopback drift by 2-3x within a minute (measured), so only paired figures
          // are comparable.
          const disk = await rawDisk(dir, size, count, extentLimits.GROUP_COMMIT_MS_DEFAULT, inflight);
          version++;
          const ids: FragmentId[] = Array.from({ length: count }, (_, i) => ({ namespace: 'bench', key: Buffer.concat([key, Buffer.from(String(i))]), version, index: 0 }));
          // Put warm-up (untimed): 2 rounds of fragments under another key fault in the node's
          // pooled receive buffers and settle the group commit; deleted with the others below.
          const warmIds: FragmentId[] = Array.from({ length: 2 * inflight }, (_, i) => ({ namespace: 'bench', key: Buffer.from(`warm-${label}-${i}`), version, index: 0 }));
          const warmHeader = (i: number): ReturnType<typeof header> => ({ ...header(version, i), keyHash: keyHash64('bench', warmIds[i]!.key) });
          await pool(warmIds.length, inflight, (i) => client.put(warmIds[i]!, warmHeader(i), bytes).then(() => undefined));
          const putLat: number[] = [];
          const t0 = process.hrtime.bigint();
          const { cpuMs: putCpuMs } = await withCpu(nodePids, () =>
            pool(count, inflight, async (i) => {
              const s = performance.now();
              await client.put(ids[i]!, header(version, i), bytes);
              putLat.push(performance.now() - s);
            }),
          );
          const putGBps = (size * count) / Number(process.hrtime.bigint() - t0);
          // The same untimed warm-up as the node gets (2 rounds of this shape) before each baseline.
          await raw.send(size, 2 * inflight, inflight);
          const tcpSend = await raw.send(size, count, inflight);
          const intos = Array.from({ length: inflight }, () => Buffer.allocUnsafe(size + 64));
          let slot = 0;
          // Warm-up (untimed, as BENCH.md asks): the first round faults in the node's pooled reply
          // buffers and this process's destination buffers.
          await pool(Math.min(count, 2 * inflight), inflight, async (i) => {
            if ((await client.get(ids[i]!, { into: intos[slot++ % inflight]! })) === undefined) throw new Error(`fragment ${i} missing`);
          });
          const getLat: number[] = [];
          const t1 = process.hrtime.bigint();
          const { cpuMs: getCpuMs } = await withCpu(nodePids, () =>
            pool(count, inflight, async (i) => {
              const into = intos[slot++ % inflight]!;
              const s = performance.now();
              const got = await client.get(ids[i]!, { into });
              if (got === undefined) throw new Error(`fragment ${i} missing`);
              getLat.push(performance.now() - s);
            }),
          );
          const getGBps = (size * count) / Number(process.hrtime.bigint() - t1);
          await raw.receive(size, 2 * inflight, inflight);
          const { value: tcpRecv, cpuMs: tcpRecvCpuMs } = await withCpu(rawPids, () => raw.receive(size, count, inflight));
          rounds.push({ putGBps, getGBps, tcpSend, tcpRecv, diskWrite: disk.writeGBps, putLat, getLat, putCpuMs, getCpuMs, tcpRecvCpuMs });
          // Free the space for the next round.
          await pool(count, 16, (i) => client.delete(ids[i]!).then(() => undefined));
          await pool(warmIds.length, 16, (i) => client.delete(warmIds[i]!).then(() => undefined));
          // The node drops extents left with no live fragment in the background (docs/storage-node.md,
          // "Dead extents"): let it finish before the next baseline runs beside it.
          await quiet(String(hello['adminUrl']));
          process.stderr.write(
            `storage bench: ${c} round ${r + 1}/${ROUNDS}: put ${round(putGBps)} GB/s (raw disk ${round(disk.writeGBps)}, raw tcp ${round(tcpSend)}), get ${round(getGBps)} GB/s (raw tcp ${round(tcpRecv)})\n`,
          );
        }
        // The round with the median ratio, reported whole (value, baseline and ratio of one pairing).
        const putRound = medianBy(rounds, (x) => x.putGBps / Math.min(x.tcpSend, x.diskWrite));
        const getRound = medianBy(rounds, (x) => x.getGBps / x.tcpRecv);
        out.push(withBaseline({ metric: `put.${c}`, value: round(putRound.putGBps), unit: 'GB/s' }, `min(raw_tcp_send, raw_disk_write).${c}`, Math.min(putRound.tcpSend, putRound.diskWrite)));
        out.push(withBaseline({ metric: `get.${c}`, value: round(getRound.getGBps), unit: 'GB/s' }, `raw_tcp_recv.${c}`, getRound.tcpRecv));
        out.push({ metric: `put.${c}.ratio.min`, value: round(Math.min(...rounds.map((x) => x.putGBps / Math.min(x.tcpSend, x.diskWrite)))), unit: 'ratio' });
        out.push({ metric: `put.${c}.ratio.max`, value: round(Math.max(...rounds.map((x) => x.putGBps / Math.min(x.tcpSend, x.diskWrite)))), unit: 'ratio' });
        out.push({ metric: `get.${c}.ratio.min`, value: round(Math.min(...rounds.map((x) => x.getGBps / x.tcpRecv))), unit: 'ratio' });
        out.push({ metric: `get.${c}.ratio.max`, value: round(Math.max(...rounds.map((x) => x.getGBps / x.tcpRecv))), unit: 'ratio' });
        // Both baselines of the round the put figure comes from (its baseline is the lower one).
        out.push({ metric: `baseline.raw_tcp_send.${c}`, value: round(putRound.tcpSend), unit: 'GB/s' });
        out.push({ metric: `baseline.raw_disk_write.${c}`, value: round(putRound.diskWrite), unit: 'GB/s' });
        const putLat = rounds.flatMap((x) => x.putLat);
        const getLat = rounds.flatMap((x) => x.getLat);
        out.push({ metric: `put.${c}.p50`, value: round(percentile(putLat, 50)), unit: 'ms' });
        out.push({ metric: `put.${c}.p99`, value: round(percentile(putLat, 99)), unit: 'ms' });
        out.push({ metric: `get.${c}.p50`, value: round(percentile(getLat, 50)), unit: 'ms' });
        out.push({ metric: `get.${c}.p99`, value: round(percentile(getLat, 99)), unit: 'ms' });
        // CPU per GB moved, all processes of each side together (client + node, client + raw
        // peer), from the rounds reported above. With every core busy, these set the rates.
        const gb = (size * count) / 1e9;
        if (getRound.getCpuMs !== undefined && getRound.tcpRecvCpuMs !== undefined) {
          out.push(withBaseline({ metric: `get.${c}.cpu_ms_per_gb`, value: round(getRound.getCpuMs / gb), unit: 'ms' }, `raw_tcp_recv.${c}.cpu_ms_per_gb`, getRound.tcpRecvCpuMs / gb));
        }
        if (putRound.putCpuMs !== undefined) out.push({ metric: `put.${c}.cpu_ms_per_gb`, value: round(putRound.putCpuMs / gb), unit: 'ms' });
      }
    }
  } finally {
    await transport.close();
    await stopChild(child);
    await raw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** The header of an unreplicated fragment of `size` bytes (a whole block in one fragment). */
function fragmentHeader(size: number, keyHash: bigint, blockVersion: bigint, fragmentChecksum: bigint) {
  return { redundancy: { kind: 'none' as const }, fragmentIndex: 0, fragmentLength: size, keyHash, blockVersion, payloadLength: size, fragmentChecksum };
}

/**
 * The node's counterpart of RawTcp.warmUp: the same message shapes and counts (3 rounds of 384 x
 * 256 KiB and 24 x 4 MiB, at 1 and 16 in flight), as puts then gets, deleted after each round.
 * Without it the first sizes measured ran against a fresh process: 256 KiB puts one at a time went
 * from 0.12 to 0.19 GB/s over their first 3,000 calls (JIT, pooled buffers, LevelDB's caches).
 */
async function warmUpNode(client: FragmentClient, adminUrl: string): Promise<void> {
  for (let r = 0; r < 3; r++) {
    for (const inflight of [1, 16]) {
      for (const [size, count] of [[256 * KiB, 384], [4 * MiB, 24]] as const) {
        const bytes = Buffer.alloc(size, 0x3c);
        const into = Array.from({ length: inflight }, () => Buffer.allocUnsafe(size + 64));
        const ids: FragmentId[] = Array.from({ length: count }, (_, i) => ({ namespace: 'bench', key: Buffer.from(`warm-node-${size}-${i}`), version: BigInt(r + 1), index: 0 }));
        const sum = checksum64(bytes);
        const header = (i: number) => fragmentHeader(size, keyHash64('bench', ids[i]!.key), BigInt(r + 1), sum);
        await pool(count, inflight, (i) => client.put(ids[i]!, header(i), bytes).then(() => undefined));
        let slot = 0;
        await pool(count, inflight, async (i) => {
          if ((await client.get(ids[i]!, { into: into[slot++ % inflight]! })) === undefined) throw new Error(`warm-up fragment ${i} missing`);
        });
        await pool(count, 16, (i) => client.delete(ids[i]!).then(() => undefined));
      }
    }
  }
  await quiet(adminUrl);
}

/**
 * Waits (polling /metrics, at most 10 s) until the node holds under 64 MiB of garbage: every round
 * deletes all it wrote, so that is when its dead extents are gone.
 */
async function quiet(adminUrl: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    const garbage = Number(/^tw_storage_capacity_bytes\{kind="garbage"\} (\S+)$/m.exec(text)?.[1] ?? 0);
    if (garbage < 64 * MiB) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs fn(0..count-1) with at most `inflight` at once. */
async function pool(count: number, inflight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}
