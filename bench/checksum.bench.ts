/**
 * Checksum candidates for blocks, fragments and extent records (docs/checksum.md): xxh64
 * (@node-rs/xxhash), crc32 (node:zlib), sha256 (node:crypto), against memcpy of the same bytes.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { xxh3, xxh64 } from '@node-rs/xxhash';
import { type Metric, memcpyGBps, round, throughputGBps, withBaseline } from './lib/harness.js';

export default async function run(): Promise<Metric[]> {
  const out: Metric[] = [];
  for (const [label, size] of [['64KiB', 64 << 10], ['1MiB', 1 << 20], ['4MiB', 4 << 20]] as const) {
    const buf = Buffer.alloc(size, 0x5a);
    const base = await memcpyGBps(size);
    const add = async (name: string, fn: () => unknown): Promise<void> => {
      const v = await throughputGBps(size, fn);
      out.push(withBaseline({ metric: `${name}.${label}`, value: round(v), unit: 'GB/s' }, `memcpy.${label}`, base));
    };
    await add('xxh64', () => xxh64(buf, 0n));
    await add('xxh3', () => xxh3.xxh64(buf));
    await add('crc32', () => crc32(buf));
    await add('sha256', () => createHash('sha256').update(buf).digest());
  }
  return out;
}
