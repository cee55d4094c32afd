/**
 * Erasure coding throughput (issue 2): RS(4,2) and RS(8,3) encode and reconstruct at 1 and 4 MiB
 * fragments, GB/s of payload, one encode in flight (one core), with memcpy of the same payload
 * measured in the same run as the ceiling. Reconstruct loses the first m data fragments (the
 * worst case: every missing fragment is data).
 */
import { createCodec } from '@tw/erasure';
import { type Metric, memcpyGBps, round, throughputGBps, withBaseline } from './lib/harness.js';

export default async function run(): Promise<Metric[]> {
  const out: Metric[] = [];
  for (const [k, m] of [[4, 2], [8, 3]] as const) {
    const codec = createCodec({ kind: 'ec', k, m });
    for (const [label, fragment] of [['1MiB', 1 << 20], ['4MiB', 4 << 20]] as const) {
      const size = fragment * k;
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i += 8) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
      const base = await memcpyGBps(size);
      const enc = await throughputGBps(size, () => codec.encode(payload));
      out.push(withBaseline({ metric: `rs${k}+${m}.encode.${label}`, value: round(enc), unit: 'GB/s' }, `memcpy.${k * fragment / (1 << 20)}MiB`, base));
      const fragments = await codec.encode(payload);
      const survivors = fragments.map((f, i) => (i < m ? undefined : f));
      const dest = Buffer.allocUnsafe(size);
      const rec = await throughputGBps(size, () => codec.reconstruct(survivors, size, { dest }));
      out.push(withBaseline({ metric: `rs${k}+${m}.reconstruct.${label}`, value: round(rec), unit: 'GB/s' }, `memcpy.${k * fragment / (1 << 20)}MiB`, base));
      // Four encodes in flight: the codec runs on libuv's pool, so this uses both cores.
      const enc4 = await throughputGBps(size * 4, () => Promise.all([0, 1, 2, 3].map(() => codec.encode(payload))));
      out.push(withBaseline({ metric: `rs${k}+${m}.encode.${label}.c4`, value: round(enc4), unit: 'GB/s' }, `memcpy.${k * fragment / (1 << 20)}MiB`, base));
    }
  }
  return out;
}
