/**
 * Storage node data path (issue 3): fragment put and get GB/s and p50/p99 latency for 256 KiB,
 * 1 MiB and 8 MiB fragments at 1 and 16 in flight; client (this process) and node (a child
 * process) talk over loopback TCP. Baselines in the same run: raw node:net between two processes
 * (same sizes, same in-flight count) and raw sequential file write/read with the node's
 * group-commit cadence (at most one fdatasync per 1 ms at 16 in flight, one per write at 1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checksum64, keyHash64 } from '@tw/block-format';
import { FragmentClient, type FragmentId } from '@tw/fragment-protocol';
import { tcpTransport } from '@tw/transport-tcp';
import { type Metric, percentile, round, scale, withBaseline } from './lib/harness.js';
import { RawTcp, rawDisk, spawnTs, stopChild } from './lib/raw-baselines.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES: Array<[string, number]> = [['256KiB', 256 * KiB], ['1MiB', MiB], ['8MiB', 8 * MiB]];
const INFLIGHT = [1, 16];

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
    let version = 0n;
    for (const [label, size] of SIZES) {
      const totalBytes = scale(768 * MiB, 96 * MiB);
      const count = Math.max(32, Math.floor(totalBytes / size));
      const bytes = Buffer.alloc(size, 0x5c);
      const key = Buffer.from(`bench-${label}`);
      const header = (v: bigint, i: number) => ({
        redundancy: { kind: 'none' as const },
        fragmentIndex: 0,
        fragmentLength: size,
        keyHash: keyHash64('bench', Buffer.concat([key, Buffer.from(String(i))])),
        blockVersion: v,
        payloadLength: size,
        fragmentChecksum: checksum64(bytes),
      });
      for (const inflight of INFLIGHT) {
        const disk = rawDisk(dir, size, count, 1, inflight);
        version++;
        const ids: FragmentId[] = Array.from({ length: count }, (_, i) => ({ namespace: 'bench', key: Buffer.concat([key, Buffer.from(String(i))]), version, index: 0 }));
        // Put warm-up (untimed): 2 rounds of fragments under another key fault in the node's
        // pooled receive buffers and settle the group commit; deleted with the others below.
        const warmIds: FragmentId[] = Array.from({ length: 2 * inflight }, (_, i) => ({ namespace: 'bench', key: Buffer.from(`warm-${label}-${i}`), version, index: 0 }));
        const warmHeader = (i: number): ReturnType<typeof header> => ({ ...header(version, i), keyHash: keyHash64('bench', warmIds[i]!.key) });
        await pool(warmIds.length, inflight, (i) => client.put(warmIds[i]!, warmHeader(i), bytes).then(() => undefined));
        const putLat: number[] = [];
        const t0 = process.hrtime.bigint();
        await pool(count, inflight, async (i) => {
          const s = performance.now();
          await client.put(ids[i]!, header(version, i), bytes);
          putLat.push(performance.now() - s);
        });
        const putGBps = (size * count) / Number(process.hrtime.bigint() - t0);
        const intos = Array.from({ length: inflight }, () => Buffer.allocUnsafe(size + 64));
        let slot = 0;
        // Warm-up (untimed, as BENCH.md asks): the first round faults in the node's pooled reply
        // buffers and this process's destination buffers; the raw-TCP baseline reads into one
        // buffer that is warm from its first use, so without this the comparison is cold vs warm.
        await pool(Math.min(count, 2 * inflight), inflight, async (i) => {
          if ((await client.get(ids[i]!, { into: intos[slot++ % inflight]! })) === undefined) throw new Error(`fragment ${i} missing`);
        });
        const getLat: number[] = [];
        const t1 = process.hrtime.bigint();
        await pool(count, inflight, async (i) => {
          const into = intos[slot++ % inflight]!;
          const s = performance.now();
          const got = await client.get(ids[i]!, { into });
          if (got === undefined) throw new Error(`fragment ${i} missing`);
          getLat.push(performance.now() - s);
        });
        const getGBps = (size * count) / Number(process.hrtime.bigint() - t1);
        // The same untimed warm-up as the node gets (2 rounds of this shape) before each baseline.
        await raw.send(size, 2 * inflight, inflight);
        const tcpSend = await raw.send(size, count, inflight);
        await raw.receive(size, 2 * inflight, inflight);
        const tcpRecv = await raw.receive(size, count, inflight);
        const c = `${label}.c${inflight}`;
        out.push(withBaseline({ metric: `put.${c}`, value: round(putGBps), unit: 'GB/s' }, `min(raw_tcp_send, raw_disk_write).${c}`, Math.min(tcpSend, disk.writeGBps)));
        out.push(withBaseline({ metric: `get.${c}`, value: round(getGBps), unit: 'GB/s' }, `raw_tcp_recv.${c}`, tcpRecv));
        out.push({ metric: `baseline.raw_tcp_send.${c}`, value: round(tcpSend), unit: 'GB/s' });
        out.push({ metric: `baseline.raw_disk_write.${label}`, value: round(disk.writeGBps), unit: 'GB/s' });
        out.push({ metric: `put.${c}.p50`, value: round(percentile(putLat, 50)), unit: 'ms' });
        out.push({ metric: `put.${c}.p99`, value: round(percentile(putLat, 99)), unit: 'ms' });
        out.push({ metric: `get.${c}.p50`, value: round(percentile(getLat, 50)), unit: 'ms' });
        out.push({ metric: `get.${c}.p99`, value: round(percentile(getLat, 99)), unit: 'ms' });
        // Free the space for the next round.
        await pool(count, 16, (i) => client.delete(ids[i]!).then(() => undefined));
        await pool(warmIds.length, 16, (i) => client.delete(warmIds[i]!).then(() => undefined));
        process.stderr.write(`storage bench: ${c} put ${round(putGBps)} GB/s, get ${round(getGBps)} GB/s\n`);
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

/** Runs fn(0..count-1) with at most `inflight` at once. */
async function pool(count: number, inflight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}
