/**
 * Erasure coding throughput (issue 2): RS(4,2) and RS(8,3) encode and reconstruct at 1 and 4 MiB
 * fragments, GB/s of payload, one operation in flight (one core), for both backends:
 * @ronomon/reed-solomon (always) and Intel ISA-L (@tw/erasure-isal, when libisal is installed).
 * The ceiling is memcpy of the same payload, measured in the same run.
 *
 * `encodeInto` writes parity into pooled buffers, as the gateway's data path does; plain `encode`
 * allocates parity per block and is reported too: on this VM a fresh multi-MiB allocation costs
 * more than the coding itself (page faults), which is why the data path pools.
 * Reconstruct loses the first m data fragments (every missing fragment is data: the worst case)
 * and decodes into a reused destination.
 */
import { type ErasureCodec, createCodec } from '@tw/erasure';
import { createIsalCodec, isalAvailable } from '@tw/erasure-isal';
import { type Metric, memcpyGBps, round, throughputGBps, withBaseline } from './lib/harness.js';

export default async function run(): Promise<Metric[]> {
  const out: Metric[] = [];
  const backends: Array<[string, (k: number, m: number) => ErasureCodec]> = [['ronomon', (k, m) => createCodec({ kind: 'ec', k, m })]];
  if (isalAvailable()) backends.push(['isal', (k, m) => createIsalCodec({ kind: 'ec', k, m })]);
  else process.stderr.write('erasure bench: ISA-L not available (apt-get install libisal-dev, then npm ci): measuring ronomon only\n');
  for (const [k, m] of [[4, 2], [8, 3]] as const) {
    for (const [label, fragment] of [['1MiB', 1 << 20], ['4MiB', 4 << 20]] as const) {
      const size = fragment * k;
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i += 8) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
      const base = await memcpyGBps(size);
      const baseName = `memcpy.${(k * fragment) / (1 << 20)}MiB`;
      out.push({ metric: `baseline.${baseName}`, value: round(base), unit: 'GB/s' });
      for (const [backend, make] of backends) {
        const codec = make(k, m);
        const parityPool = Buffer.alloc(fragment * m);
        const parity = Array.from({ length: m }, (_, i) => parityPool.subarray(i * fragment, (i + 1) * fragment));
        const name = `${backend}.rs${k}+${m}`;
        const encInto = await throughputGBps(size, () => codec.encodeInto(payload, parity));
        out.push(withBaseline({ metric: `${name}.encode.${label}`, value: round(encInto), unit: 'GB/s' }, baseName, base));
        const enc = await throughputGBps(size, () => codec.encode(payload));
        out.push(withBaseline({ metric: `${name}.encode_alloc.${label}`, value: round(enc), unit: 'GB/s' }, baseName, base));
        const fragments = await codec.encode(payload);
        const survivors = fragments.map((f, i) => (i < m ? undefined : Buffer.from(f)));
        const dest = Buffer.allocUnsafe(size);
        const rec = await throughputGBps(size, () => codec.reconstruct(survivors, size, { dest }));
        out.push(withBaseline({ metric: `${name}.reconstruct.${label}`, value: round(rec), unit: 'GB/s' }, baseName, base));
      }
    }
  }
  return out;
}
