/** The fast LookupPrefix answer serializer writes exactly what protobufjs writes, and reads back the same. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LookupPrefixResponseMsg } from '../src/index.js';
import { lookupResponseSerializer } from '../src/lookup-response-codec.js';
import { CoordinatorService } from '../src/proto.js';

const method = CoordinatorService.service['LookupPrefix']!;
const fast = lookupResponseSerializer(method.responseSerialize);

describe('lookupResponseSerializer', () => {
  it('gives protobufjs bytes for every answer without message records', () => {
    const answer = fc.record(
      {
        hits: fc.oneof(fc.nat({ max: 4096 }), fc.constant(0)),
        records: fc.constant([]),
        appliedIndex: fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), fc.constantFrom('0', '127', '128', '18446744073709551615')),
        packedRecords: fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)),
        keysRead: fc.nat({ max: 1_000_000 }),
      },
      { requiredKeys: ['hits', 'records', 'appliedIndex'] },
    );
    fc.assert(
      fc.property(answer, (res) => {
        const want = method.responseSerialize(res);
        const got = fast(res);
        expect(got.toString('hex')).toBe(want.toString('hex'));
        const back = method.responseDeserialize(got) as LookupPrefixResponseMsg;
        expect([back.hits, back.appliedIndex, back.keysRead]).toEqual([res.hits, res.appliedIndex, res.keysRead ?? 0]);
        expect(Buffer.compare(back.packedRecords ?? Buffer.alloc(0), res.packedRecords ?? Buffer.alloc(0))).toBe(0);
      }),
      { seed: 0x10c4f5, numRuns: 300 },
    );
  });

  it('leaves answers with message records to protobufjs', () => {
    const rec = { namespace: 'ns', key: Buffer.from('k'), version: '1', sizeBytes: '2', checksum: '3', redundancy: 'none', fragmentNodes: ['a'], state: 'BLOCK_STATE_COMMITTED', createdAtMs: '0', lastAccessMs: '0', ttlMs: '0', pinned: false, layout: null, pg: 0, mapVersion: '1' };
    const res = { hits: 1, records: [rec], appliedIndex: '9' };
    expect(fast(res).equals(method.responseSerialize(res))).toBe(true);
  });
});
