/**
 * Extent store put / get throughput (GB/s) for 256 KiB, 1 MiB and 8 MiB fragments, 16 in flight,
 * with the default group-commit policy (fdatasync every 5 ms), against a baseline measured in the
 * same run: raw positional writes of the same sizes to one preallocated file with the same
 * in-flight count and the same fsync cadence (each write waits for the next 5 ms fdatasync),
 * and raw preads of the same bytes. Reads of both sides come from the page cache (just written).
 *
 * `npm run bench -- extent-store` (BENCH_QUICK=1 for a short run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Benchmarks measure every layer; bench/ is tagged scope:shared, so the storage import is allowed
// here explicitly (the lead may retag bench/ instead).
import { openExtentStore } from '@tw/extent-store';
import { checksum64 } from '@tw/block-format';
import { median, round, scale, withBaseline, type Metric } from './lib/harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const INFLIGHT = 16;
const GROUP_MS = 5;
const SIZES: [string, number][] = [
  ['256KiB', 256 * KiB],
  ['1MiB', 1 * MiB],
  ['8MiB', 8 * MiB],
];

/** Runs `count` tasks with at most `inflight` at once; returns elapsed seconds. */
async function pipelined(count: number, inflight: number, task: (i: number, slot: number) => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async (_, slot) => {
      while (next < count) {
        const i = next++;
        await task(i, slot);
      }
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Group commit on a raw file: a write is done when the next fdatasync after it finishes. */
function rawGroupCommit(fh: Awaited<ReturnType<typeof open>>): { waitDurable: () => Promise<void>; stop: () => void } {
  let waiters: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  let syncing = false;
  const tick = async (): Promise<void> => {
    timer = undefined;
    if (syncing) return;
    syncing = true;
    const batch = waiters;
    waiters = [];
    await fh.datasync();
    syncing = false;
    for (const w of batch) w();
    if (waiters.length > 0 && timer === undefined) timer = setTimeout(() => void tick(), GROUP_MS);
  };
  return {
    waitDurable: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
        if (timer === undefined && !syncing) timer = setTimeout(() => void tick(), GROUP_MS);
      }),
    stop: () => {
      if (timer) clearTimeout(timer);
    },
  };
}

interface Side {
  write(i: number): Promise<void>;
  read(i: number, slot: number): Promise<void>;
}

let sink = 0n;

/** Raw file: 4 KiB-aligned slots in one preallocated (sparse) file, like an extent. */
async function rawSide(dir: string, sizeBytes: number, count: number): Promise<Side & { readHashed(i: number, s: number): Promise<void>; close(): Promise<void> }> {
  const fh = await open(join(dir, 'raw.bin'), 'w+');
  const slot = Math.ceil((sizeBytes + 4096) / 4096) * 4096;
  await fh.truncate(slot * count);
  const src = Buffer.alloc(sizeBytes, 0x5a);
  const gc = rawGroupCommit(fh);
  const bufs = Array.from({ length: INFLIGHT }, () => Buffer.allocUnsafe(sizeBytes));
  return {
    async write(i) {
      await fh.write(src, 0, sizeBytes, i * slot);
      await gc.waitDurable();
    },
    async read(i, s) {
      await fh.read(bufs[s]!, 0, sizeBytes, i * slot);
    },
    /** The same read plus the xxh64 a verified read must compute: what checksums cost here. */
    async readHashed(i: number, s: number) {
      await fh.read(bufs[s]!, 0, sizeBytes, i * slot);
      sink ^= checksum64(bufs[s]!);
    },
    async close() {
      gc.stop();
      await fh.close();
    },
  };
}

async function storeSide(dir: string, sizeBytes: number, count: number): Promise<Side & { close(): Promise<void> }> {
  const s = await openExtentStore({ dir: join(dir, 'store'), extentSizeBytes: 256 * MiB, fsync: { mode: 'group', intervalMs: GROUP_MS }, reserveBytes: 256 * MiB });
  const payload = Buffer.alloc(sizeBytes, 0x5a);
  const ids = Array.from({ length: count }, (_, i) => Buffer.from(`bench/ns/${i.toString(16).padStart(8, '0')}/frag-0`));
  const bufs = Array.from({ length: INFLIGHT }, () => Buffer.allocUnsafe(sizeBytes));
  return {
    async write(i) {
      await s.put(ids[i]!, payload);
    },
    async read(i, slot) {
      const r = await s.get(ids[i]!, { into: bufs[slot]! });
      if (r === undefined || r.bytes.byteLength !== sizeBytes) throw new Error(`bench: fragment ${i} missing`);
    },
    close: () => s.close(),
  };
}

/**
 * Store and baseline take turns, a round each (order alternating), so both see the same
 * machine: the median per-round rate of each side is reported.
 */
async function measure(sizeBytes: number, count: number, rounds: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-extent-'));
  const raw = await rawSide(dir, sizeBytes, count);
  const st = await storeSide(dir, sizeBytes, count);
  try {
    const per = Math.floor(count / rounds);
    const rate = { rawW: [] as number[], stW: [] as number[], rawR: [] as number[], stR: [] as number[], rawRH: [] as number[] };
    const lat: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const base = r * per;
      const doRaw = async (): Promise<void> => {
        rate.rawW.push((sizeBytes * per) / (await pipelined(per, INFLIGHT, (i) => raw.write(base + i))) / 1e9);
      };
      const doStore = async (): Promise<void> => {
        const sec = await pipelined(per, INFLIGHT, async (i) => {
          const t0 = process.hrtime.bigint();
          await st.write(base + i);
          lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        });
        rate.stW.push((sizeBytes * per) / sec / 1e9);
      };
      if (r % 2 === 0) {
        await doRaw();
        await doStore();
      } else {
        await doStore();
        await doRaw();
      }
    }
    // Warm up both read paths (JIT, index block cache) before timing them.
    await pipelined(per, INFLIGHT, (i, s) => raw.read(i, s));
    await pipelined(per, INFLIGHT, (i, s) => st.read(i, s));
    for (let r = 0; r < rounds * 2; r++) {
      const base = (r % rounds) * per;
      const doRaw = async (): Promise<void> => {
        rate.rawR.push((sizeBytes * per) / (await pipelined(per, INFLIGHT, (i, s) => raw.read(base + i, s))) / 1e9);
      };
      const doStore = async (): Promise<void> => {
        rate.stR.push((sizeBytes * per) / (await pipelined(per, INFLIGHT, (i, s) => st.read(base + i, s))) / 1e9);
      };
      if (r % 2 === 0) {
        await doRaw();
        await doStore();
      } else {
        await doStore();
        await doRaw();
      }
      rate.rawRH.push((sizeBytes * per) / (await pipelined(per, INFLIGHT, (i, s) => raw.readHashed(base + i, s))) / 1e9);
    }
    lat.sort((a, b) => a - b);
    return {
      putGBps: median(rate.stW),
      rawWriteGBps: median(rate.rawW),
      getGBps: median(rate.stR),
      rawReadGBps: median(rate.rawR),
      rawReadHashedGBps: median(rate.rawRH),
      putP50Ms: lat[Math.floor(lat.length * 0.5)]!,
      putP99Ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))]!,
    };
  } finally {
    await st.close();
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function run(): Promise<Metric[]> {
  const totalBytes = scale(512 * MiB, 96 * MiB);
  const rounds = scale(6, 3);
  const out: Metric[] = [];
  for (const [label, sizeBytes] of SIZES) {
    const count = Math.max(INFLIGHT * 2 * rounds, Math.floor(totalBytes / sizeBytes));
    const m = await measure(sizeBytes, count, rounds);
    const c = `c${INFLIGHT}`;
    out.push(
      withBaseline({ metric: `put.group${GROUP_MS}ms.${label}.${c}`, value: round(m.putGBps), unit: 'GB/s' }, `rawfile.write.fdatasync${GROUP_MS}ms.${label}.${c}`, m.rawWriteGBps),
      withBaseline({ metric: `get.${label}.${c}`, value: round(m.getGBps), unit: 'GB/s' }, `rawfile.read.${label}.${c}`, m.rawReadGBps),
      { metric: `rawfile.read_xxh64.${label}.${c}`, value: round(m.rawReadHashedGBps), unit: 'GB/s' },
      { metric: `put.group${GROUP_MS}ms.${label}.${c}.p50`, value: round(m.putP50Ms), unit: 'ms' },
      { metric: `put.group${GROUP_MS}ms.${label}.${c}.p99`, value: round(m.putP99Ms), unit: 'ms' },
    );
  }
  if (sink === 1n) console.log('');
  return out;
}
