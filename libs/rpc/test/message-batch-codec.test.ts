/**
 * The hand-written MessageBatch encoder against protobufjs's generated one (from raft.proto, as
 * the receiving side decodes it): same bytes for random batches, and they decode back.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { encodeMessageBatch } from '../src/message-batch-codec.js';

const def = protoLoader.loadSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'proto', 'raft.proto'), { longs: String, defaults: true, arrays: true, bytes: Buffer });
const stepStream = (def['tw.raft.v1.RaftPeer'] as Record<string, { requestSerialize: (m: unknown) => Buffer; requestDeserialize: (b: Buffer) => { from: string; messages: Buffer[] } }>)['StepStream']!;

describe('encodeMessageBatch', () => {
  test('gives the generated encoder\'s bytes, which decode back to the batch', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(0), fc.nat({ max: 300 }), fc.maxSafeNat()),
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff))), { maxLength: 6 }),
        (from, messages) => {
          const batch = { from: String(from), messages: messages.map((m) => Buffer.from(m)) };
          const ours = encodeMessageBatch(batch);
          expect(ours.toString('hex')).toBe(stepStream.requestSerialize(batch).toString('hex'));
          const back = stepStream.requestDeserialize(ours);
          expect(back.from).toBe(String(from));
          expect(back.messages.map((m) => m.toString('hex'))).toEqual(batch.messages.map((m) => m.toString('hex')));
        },
      ),
      { seed: 0xba7c4, numRuns: 300 },
    );
  });

  test('refuses a sender id that is not a safe non-negative integer', () => {
    for (const from of ['-1', 'x', '1e300', String(2 ** 60)]) {
      expect(() => encodeMessageBatch({ from, messages: [] })).toThrow(expect.objectContaining({ code: 'TW_RPC_INTERNAL' }));
    }
  });
});
