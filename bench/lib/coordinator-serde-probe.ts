/**
 * Profiling aid (not run by `npm run bench`): the cost of turning 1,024 block records into a
 * LookupPrefix answer and back, as the coordinator and its client do (recordToMsg, the
 * proto-loader serializer with longs as strings, the client's deserializer).
 *
 *   node --conditions=tw-source --import tsx bench/lib/coordinator-serde-probe.ts
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { recordToMsg } from '@tw/coordinator-service';

// The same loader options as libs/rpc/src/proto.ts.
const protoFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'libs', 'rpc', 'proto', 'coordinator.proto');
const pkg = protoLoader.loadSync(protoFile, { keepCase: false, longs: String, enums: String, defaults: true, arrays: true, objects: false, oneofs: true, bytes: Buffer });
type Def = { responseSerialize(x: unknown): Buffer; responseDeserialize(b: Buffer): unknown };
const def = (pkg['tw.coordinator.v1.Coordinator'] as unknown as Record<string, Def>)['LookupPrefix']!;
const records = Array.from({ length: 1024 }, (_, i) => ({
  namespace: 'default',
  key: Buffer.from(`llama-3.1-8b@0@${i.toString(16).padStart(16, '0')}${'f'.repeat(16)}`, 'latin1'),
  version: 1000 + i,
  writeVersion: BigInt(1000 + i),
  sizeBytes: 32 * 1024 * 1024,
  checksum: 0x9e3779b97f4a7c15n,
  layout: null,
  redundancy: { kind: 'ec' as const, k: 4, m: 2 },
  fragmentNodes: ['sn-0', 'sn-1', 'sn-2', 'sn-3', 'sn-4', 'sn-5'],
  state: 'committed' as const,
  createdAtMs: 1_764_000_000_000,
  lastAccessMs: 1_764_000_000_000,
  ttlMs: 0,
  pinned: false,
  deletingSinceMs: 0,
}));
const time = (fn: () => unknown, n = 50): number => {
  for (let i = 0; i < 5; i++) fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - t) / n;
};
const toMsg = (): unknown => ({ hits: 1024, records: records.map((r, i) => recordToMsg(r as never, i & 4095)), appliedIndex: '12345' });
const msg = toMsg();
const bytes = def.responseSerialize(msg);
const numeric = { ...(msg as { records: Record<string, unknown>[] }), records: (msg as { records: Record<string, unknown>[] }).records.map((r) => ({ ...r, version: Number(r['version']), mapVersion: Number(r['mapVersion']), sizeBytes: Number(r['sizeBytes']), createdAtMs: Number(r['createdAtMs']), lastAccessMs: Number(r['lastAccessMs']), ttlMs: Number(r['ttlMs']) })) };
console.log(
  JSON.stringify({
    responseBytes: bytes.length,
    recordToMsgMs: time(toMsg).toFixed(2),
    serializeMs: time(() => def.responseSerialize(msg)).toFixed(2),
    serializeNumericU64Ms: time(() => def.responseSerialize(numeric)).toFixed(2),
    deserializeMs: time(() => def.responseDeserialize(bytes)).toFixed(2),
  }),
);
