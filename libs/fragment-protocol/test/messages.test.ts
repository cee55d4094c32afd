import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TwError } from '@tw/errors';
import { checksum64, encodeFragmentHeader, fragmentBytes, keyHash64 } from '@tw/block-format';
import {
  Op,
  checkFragmentPayload,
  decodeFragmentId,
  decodeReply,
  decodeRequest,
  encodeFragmentId,
  encodeKeyPrefix,
  encodeReply,
  encodeRequest,
  type FragmentReply,
  type FragmentRequest,
} from '../src/index.js';

const SEED = 77;
const nsArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/);
const keyArb = fc.uint8Array({ minLength: 1, maxLength: 512 });
const idArb = fc.record({ namespace: nsArb, key: keyArb, version: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), index: fc.integer({ min: 0, max: 255 }) });
const bytesArb = fc.uint8Array({ maxLength: 600 });

const requestArb: fc.Arbitrary<FragmentRequest> = fc.oneof(
  fc.record({ op: fc.constantFrom(Op.PUT, Op.GET, Op.DELETE, Op.STAT), id: fc.uint8Array({ minLength: 1, maxLength: 600 }) }),
  fc.record({ op: fc.constant(Op.LIST), prefix: bytesArb, after: bytesArb, limit: fc.integer({ min: 1, max: 1000 }) }),
  fc.constant({ op: Op.CAPACITY }),
);
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const replyArb: fc.Arbitrary<FragmentReply> = fc.oneof(
  fc.record({ op: fc.constantFrom(Op.PUT, Op.GET), found: fc.boolean(), seq: u53 }),
  fc.record({ op: fc.constant(Op.DELETE), found: fc.boolean() }),
  fc.record({ op: fc.constant(Op.STAT), found: fc.boolean(), sizeBytes: u53, seq: u53 }),
  fc.record({
    op: fc.constant(Op.LIST),
    entries: fc.array(fc.record({ id: bytesArb.map((b) => Buffer.from(b)), sizeBytes: u53 }), { maxLength: 20 }),
    next: fc.option(fc.uint8Array({ minLength: 1, maxLength: 100 }).map((b) => Buffer.from(b)), { nil: undefined }),
  }),
  fc.record({ op: fc.constant(Op.CAPACITY), liveBytes: u53, garbageBytes: u53, freeBytes: u53, fragmentCount: u53 }),
);

function normalize(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array || (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') ? Buffer.from(v as Uint8Array).toString('hex') : v)));
}

describe('fragment ids', () => {
  test('round-trip, and ids of one key share its prefix and sort by version', () => {
    fc.assert(
      fc.property(idArb, (id) => {
        const enc = encodeFragmentId(id);
        const dec = decodeFragmentId(enc);
        expect(dec.namespace).toBe(id.namespace);
        expect(Buffer.from(dec.key).equals(Buffer.from(id.key))).toBe(true);
        expect(dec.version).toBe(id.version);
        expect(dec.index).toBe(id.index);
        expect(enc.subarray(0, enc.length - 9).equals(encodeKeyPrefix(id.namespace, id.key))).toBe(true);
        if (id.version > 0n) expect(Buffer.compare(encodeFragmentId({ ...id, version: id.version - 1n }), enc)).toBe(-1);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

describe('messages', () => {
  test('requests round-trip', () => {
    fc.assert(fc.property(requestArb, (req) => { expect(normalize(decodeRequest(encodeRequest(req)))).toEqual(normalize(req)); }), { seed: SEED, numRuns: 1000 });
  });
  test('replies round-trip', () => {
    fc.assert(fc.property(replyArb, (rep) => {
      const back = decodeReply(encodeReply(rep), rep.op);
      const expected = rep.op === Op.LIST ? rep : rep.op === Op.CAPACITY ? rep : rep;
      expect(normalize(back)).toEqual(normalize(expected));
    }), { seed: SEED, numRuns: 1000 });
  });
  test('fuzz: garbage and mutations are coded errors, never a crash', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), requestArb.map((r) => encodeRequest(r))), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }), fc.nat(), (bytes, flips, cut) => {
        const b = Buffer.from(bytes);
        for (const [at, x] of flips) if (b.length) b[at % b.length]! ^= x;
        for (const input of [b, b.subarray(0, cut % (b.length + 1))]) {
          for (const decode of [() => decodeRequest(input), () => decodeReply(input, Op.LIST), () => decodeFragmentId(input)]) {
            try {
              decode();
            } catch (err) {
              if (!(err instanceof TwError)) throw err;
              expect(['TW_FRAGMENT_BAD_REQUEST', 'TW_FRAGMENT_PROTOCOL_VERSION']).toContain(err.code);
            }
          }
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
  test('a reply to another op is refused', () => {
    expect(() => decodeReply(encodeReply({ op: Op.PUT, found: true, seq: 1 }), Op.GET)).toThrow(expect.objectContaining({ code: 'TW_FRAGMENT_BAD_REQUEST' }));
    expect(() => decodeRequest(Buffer.from([2, 1, 0, 0]))).toThrow(expect.objectContaining({ code: 'TW_FRAGMENT_PROTOCOL_VERSION' }));
  });
});

describe('checkFragmentPayload', () => {
  const id = { namespace: 'default', key: Buffer.from('chunk-0'), version: 3n, index: 1 };
  const redundancy = { kind: 'ec' as const, k: 2, m: 1 };
  const bytes = Buffer.alloc(fragmentBytes(redundancy, 100), 7);
  const header = { redundancy, fragmentIndex: 1, fragmentLength: bytes.length, keyHash: keyHash64('default', id.key), blockVersion: 3n, payloadLength: 100, fragmentChecksum: checksum64(bytes) };
  const payload = Buffer.concat([encodeFragmentHeader(header), bytes]);
  test('accepts a matching fragment', () => {
    expect(() => checkFragmentPayload(encodeFragmentId(id), payload)).not.toThrow();
  });
  test('refuses corrupt bytes, foreign headers, missing headers', () => {
    const corrupt = Buffer.from(payload);
    corrupt[payload.length - 1]! ^= 1;
    expect(() => checkFragmentPayload(encodeFragmentId(id), corrupt)).toThrow(expect.objectContaining({ code: 'TW_CHECKSUM_MISMATCH' }));
    expect(() => checkFragmentPayload(encodeFragmentId({ ...id, version: 4n }), payload)).toThrow(expect.objectContaining({ code: 'TW_FRAGMENT_MISMATCH' }));
    expect(() => checkFragmentPayload(encodeFragmentId({ ...id, index: 0 }), payload)).toThrow(expect.objectContaining({ code: 'TW_FRAGMENT_MISMATCH' }));
    expect(() => checkFragmentPayload(encodeFragmentId({ ...id, key: Buffer.from('other') }), payload)).toThrow(expect.objectContaining({ code: 'TW_FRAGMENT_MISMATCH' }));
    expect(() => checkFragmentPayload(encodeFragmentId(id), payload.subarray(0, 10))).toThrow(expect.objectContaining({ code: 'TW_FRAGMENT_BAD_REQUEST' }));
  });
});
