import fc from 'fast-check';
import { TwError } from '@tw/errors';
import { describe, expect, test } from 'vitest';
import {
  NATIVE_KEY_BYTES_MAX,
  NATIVE_LOOKUP_KEYS_MAX,
  NATIVE_PROTOCOL_VERSION,
  NATIVE_TOKEN_BYTES_MAX,
  NativeOp,
  type NativeOpCode,
  type NativeReply,
  type NativeRequest,
  NATIVE_DELIVER_SCATTER_MAX,
  type ScatterEntry,
  decodeLookupKeys,
  decodeReply,
  decodeScatter,
  encodeScatter,
  decodeRequest,
  encodeLookupKeys,
  encodeReply,
  encodeRequest,
  errorReplyOf,
} from '../src/index.js';

const SEED = 0x6e617469;

/** Every code a decoder may throw on untrusted bytes. */
const DECODER_CODES = new Set(['TW_NATIVE_MALFORMED', 'TW_NATIVE_VERSION', 'TW_NATIVE_UNKNOWN_OP', 'TW_NATIVE_TOO_MANY_KEYS', 'TW_KEY_EMPTY', 'TW_KEY_TOO_LONG', 'TW_NAMESPACE_INVALID']);

const nsArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/);
const tokenArb = fc.oneof(fc.constant(''), fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
const keyArb = fc.uint8Array({ minLength: 1, maxLength: NATIVE_KEY_BYTES_MAX });
const credsArb = fc.record({ namespace: nsArb, token: tokenArb });

const requestArb: fc.Arbitrary<NativeRequest> = fc.oneof(
  credsArb.map((c) => ({ op: NativeOp.HELLO, ...c })),
  fc.oneof(credsArb, fc.constant({ namespace: '', token: '' })).map((c) => ({ op: NativeOp.PING, ...c })),
  fc.record({ c: credsArb, key: keyArb, sync: fc.boolean(), ttlMs: fc.oneof(fc.constant(0), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)) }).map(({ c, key, sync, ttlMs }) => ({ op: NativeOp.PUT, ...c, key, sync, ttlMs })),
  fc.record({ c: credsArb, key: keyArb, op: fc.constantFrom(NativeOp.GET, NativeOp.EXISTS, NativeOp.DELETE) }).map(({ c, key, op }) => ({ op, ...c, key })),
  fc.record({ c: credsArb, keyCount: fc.nat({ max: NATIVE_LOOKUP_KEYS_MAX }), prefetch: fc.boolean() }).map(({ c, keyCount, prefetch }) => ({ op: NativeOp.LOOKUP_PREFIX, ...c, keyCount, prefetch })),
  fc
    .record({ c: credsArb, key: keyArb, file: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/), tailBytes: fc.nat({ max: 512 * 1024 * 1024 }), scatterCount: fc.integer({ min: 1, max: NATIVE_DELIVER_SCATTER_MAX }) })
    .map(({ c, key, file, tailBytes, scatterCount }) => ({ op: NativeOp.DELIVER, ...c, key, file, tailBytes, scatterCount })),
);

/** A scatter list inside a tail of `tailBytes` bytes. */
const scatterArb = fc.integer({ min: 1, max: 512 * 1024 * 1024 }).chain((tailBytes) =>
  fc
    .array(
      fc.record({ a: fc.nat({ max: tailBytes - 1 }), len: fc.integer({ min: 1, max: tailBytes }), fileOffset: fc.nat({ max: Number.MAX_SAFE_INTEGER - (1 << 30) }) }),
      { minLength: 1, maxLength: 40 },
    )
    .map((xs) => ({ tailBytes, entries: xs.map((x): ScatterEntry => ({ tailOffset: x.a, bytes: Math.min(x.len, tailBytes - x.a), fileOffset: x.fileOffset })) })),
);

const errorArb = fc.record({
  op: fc.integer({ min: 1, max: 8 }),
  code: fc.stringMatching(/^TW_[A-Z0-9_]{1,40}$/),
  message: fc.string({ maxLength: 300 }),
  retryable: fc.boolean(),
});

const replyArb: fc.Arbitrary<NativeReply> = fc.oneof(
  fc
    .record({ valueBytesMax: fc.nat({ max: 0xffff_ffff }), lookupKeysMax: fc.nat({ max: 0xffff_ffff }), keyBytesMax: fc.nat({ max: 0xffff }), deliveryDir: fc.oneof(fc.constant(''), fc.string({ maxLength: 60 })) })
    .map((l) => ({ op: NativeOp.HELLO, status: 'ok' as const, ...l })),
  fc.record({ valueBytes: fc.nat({ max: 512 * 1024 * 1024 }), tailChecksum: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }).map((d) => ({ op: NativeOp.DELIVER, status: 'ok' as const, ...d })),
  fc.constant({ op: NativeOp.DELIVER, status: 'not_found' as const }),
  fc.constant({ op: NativeOp.PING, status: 'ok' as const }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((version) => ({ op: NativeOp.PUT, status: 'ok' as const, version })),
  fc.nat({ max: 512 * 1024 * 1024 }).map((valueBytes) => ({ op: NativeOp.GET, status: 'ok' as const, valueBytes })),
  fc.constant({ op: NativeOp.GET, status: 'not_found' as const }),
  fc.record({ op: fc.constantFrom(NativeOp.EXISTS, NativeOp.DELETE), yes: fc.boolean() }).map(({ op, yes }) => ({ op, status: 'ok' as const, yes })),
  fc.nat({ max: 0xffff_ffff }).map((hits) => ({ op: NativeOp.LOOKUP_PREFIX, status: 'ok' as const, hits })),
  errorArb.map((e) => ({ ...e, status: 'error' as const })),
);

const norm = (x: unknown): unknown =>
  x instanceof Uint8Array ? Buffer.from(x).toString('hex') : typeof x === 'bigint' ? `${x}n` : typeof x === 'object' && x !== null ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, norm(v)])) : x;

/** Runs `fn` on untrusted bytes: it may return or throw a coded TwError, nothing else. */
function onlyCodedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof TwError) || !DECODER_CODES.has(err.code)) throw new Error(`decoder threw ${String(err)} (${(err as { code?: string }).code})`);
  }
}

describe('round trips', () => {
  test('every request decodes to itself', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        expect(norm(decodeRequest(encodeRequest(req)))).toEqual(norm(req));
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });

  test('every reply decodes to itself', () => {
    fc.assert(
      fc.property(replyArb, (rep) => {
        expect(norm(decodeReply(encodeReply(rep), rep.op as NativeOpCode))).toEqual(norm(rep));
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });

  test('lookup key lists decode to their keys', () => {
    fc.assert(
      fc.property(fc.array(keyArb, { maxLength: 64 }), (keys) => {
        const got = decodeLookupKeys(encodeLookupKeys(keys), keys.length);
        expect(got.map((k) => k.toString('hex'))).toEqual(keys.map((k) => Buffer.from(k).toString('hex')));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('scatter lists decode to their entries', () => {
    fc.assert(
      fc.property(scatterArb, ({ tailBytes, entries }) => {
        expect(decodeScatter(encodeScatter(entries, tailBytes), entries.length, tailBytes)).toEqual(entries);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('error messages are cut at 1024 bytes on a character boundary', () => {
    const msg = 'é'.repeat(2000);
    const r = decodeReply(encodeReply({ op: NativeOp.GET, status: 'error', code: 'TW_X', message: msg, retryable: true }), NativeOp.GET);
    expect(r).toMatchObject({ status: 'error', code: 'TW_X', retryable: true });
    expect(Buffer.byteLength((r as { message: string }).message)).toBe(1024);
    expect(errorReplyOf(NativeOp.PUT, new Error('boom'))).toMatchObject({ code: 'TW_GATEWAY_INTERNAL', message: 'boom' });
  });
});

describe('strict validation', () => {
  const base = { namespace: 'ns', token: '' };
  test('bounds are enforced on encode with coded errors', () => {
    expect(() => encodeRequest({ op: NativeOp.GET, ...base, key: new Uint8Array(NATIVE_KEY_BYTES_MAX + 1) })).toThrow(expect.objectContaining({ code: 'TW_KEY_TOO_LONG' }));
    expect(() => encodeRequest({ op: NativeOp.GET, ...base, key: new Uint8Array(0) })).toThrow(expect.objectContaining({ code: 'TW_KEY_EMPTY' }));
    expect(() => encodeRequest({ op: NativeOp.GET, namespace: 'Bad NS', token: '', key: new Uint8Array(1) })).toThrow(expect.objectContaining({ code: 'TW_NAMESPACE_INVALID' }));
    expect(() => encodeRequest({ op: NativeOp.HELLO, namespace: 'ns', token: 'x'.repeat(NATIVE_TOKEN_BYTES_MAX + 1) })).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    expect(() => encodeRequest({ op: NativeOp.LOOKUP_PREFIX, ...base, keyCount: NATIVE_LOOKUP_KEYS_MAX + 1, prefetch: false })).toThrow(expect.objectContaining({ code: 'TW_NATIVE_TOO_MANY_KEYS' }));
    expect(() => encodeLookupKeys(new Array<Uint8Array>(NATIVE_LOOKUP_KEYS_MAX + 1).fill(new Uint8Array(1)))).toThrow(expect.objectContaining({ code: 'TW_NATIVE_TOO_MANY_KEYS' }));
    const deliver = { op: NativeOp.DELIVER, ...base, key: Buffer.from('k'), file: 'f.bin', tailBytes: 10, scatterCount: 1 } as const;
    for (const file of ['', '../x', 'a/b', '.hidden', 'x'.repeat(201), 'sp ace']) {
      expect(() => encodeRequest({ ...deliver, file })).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    }
    expect(() => encodeRequest({ ...deliver, scatterCount: 0 })).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    expect(() => encodeRequest({ ...deliver, scatterCount: NATIVE_DELIVER_SCATTER_MAX + 1 })).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    // Ranges outside the tail, empty ranges, no entries.
    expect(() => encodeScatter([{ tailOffset: 5, bytes: 6, fileOffset: 0 }], 10)).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    expect(() => encodeScatter([{ tailOffset: 0, bytes: 0, fileOffset: 0 }], 10)).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    expect(() => encodeScatter([{ tailOffset: -1, bytes: 1, fileOffset: 0 }], 10)).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    expect(() => encodeScatter([], 10)).toThrow(expect.objectContaining({ code: 'TW_NATIVE_BAD_INPUT' }));
    // The decoder checks the same against the tail it is given.
    const one = encodeScatter([{ tailOffset: 4, bytes: 6, fileOffset: 100 }], 10);
    expect(decodeScatter(one, 1, 10)).toEqual([{ tailOffset: 4, bytes: 6, fileOffset: 100 }]);
    expect(() => decodeScatter(one, 1, 9)).toThrow(expect.objectContaining({ code: 'TW_NATIVE_MALFORMED' }));
    expect(() => decodeScatter(one, 2, 10)).toThrow(expect.objectContaining({ code: 'TW_NATIVE_MALFORMED' }));
  });

  test('decoders name what is wrong', () => {
    const get = encodeRequest({ op: NativeOp.GET, ...base, key: Buffer.from('k') });
    const code = (b: Uint8Array, f: (b: Uint8Array) => unknown = decodeRequest): string | undefined => {
      try {
        f(b);
        return undefined;
      } catch (err) {
        return (err as TwError).code;
      }
    };
    expect(code(Buffer.concat([get, Buffer.from([0])]))).toBe('TW_NATIVE_MALFORMED');
    expect(code(get.subarray(0, get.length - 1))).toBe('TW_NATIVE_MALFORMED');
    expect(code(Buffer.from([NATIVE_PROTOCOL_VERSION + 1, ...get.subarray(1)]))).toBe('TW_NATIVE_VERSION');
    const unknownOp = Buffer.from(get);
    unknownOp[1] = 99;
    expect(code(unknownOp)).toBe('TW_NATIVE_UNKNOWN_OP');
    const flagged = Buffer.from(get);
    flagged[2] = 1;
    expect(code(flagged)).toBe('TW_NATIVE_MALFORMED');
    // A key length of 513 in a LOOKUP payload.
    expect(code(Buffer.from([0x01, 0x02, 0x61]), (b) => decodeLookupKeys(b, 1))).toBe('TW_KEY_TOO_LONG');
    expect(code(Buffer.from([0x01, 0x00, 0x61, 0x00]), (b) => decodeLookupKeys(b, 1))).toBe('TW_NATIVE_MALFORMED');
    expect(code(Buffer.alloc(0), (b) => decodeLookupKeys(b, NATIVE_LOOKUP_KEYS_MAX + 1))).toBe('TW_NATIVE_TOO_MANY_KEYS');
    // A reply to another op, a reply status that does not exist.
    expect(code(encodeReply({ op: NativeOp.PUT, status: 'ok', version: 1n }), (b) => decodeReply(b, NativeOp.GET))).toBe('TW_NATIVE_MALFORMED');
    expect(code(Buffer.concat([encodeReply({ op: NativeOp.LOOKUP_PREFIX, status: 'ok', hits: 3 }), Buffer.from([0])]), (b) => decodeReply(b, NativeOp.LOOKUP_PREFIX))).toBe('TW_NATIVE_MALFORMED');
    const badStatus = encodeReply({ op: NativeOp.PING, status: 'ok' });
    badStatus[2] = 7;
    expect(code(badStatus, (b) => decodeReply(b, NativeOp.PING))).toBe('TW_NATIVE_MALFORMED');
  });
});

describe('fuzz: decoders fail only with coded errors', () => {
  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['request', decodeRequest],
    ...([1, 2, 3, 4, 5, 6, 7, 8] as NativeOpCode[]).map((op): [string, (b: Uint8Array) => unknown] => [`reply ${op}`, (b) => decodeReply(b, op)]),
    ['lookup keys', (b) => decodeLookupKeys(b, b[0] ?? 0)],
    ['scatter list', (b) => decodeScatter(b, Math.max(1, Math.floor(b.length / 24)), b[1] ?? 0)],
  ];

  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        for (const [, decode] of decoders) onlyCodedErrors(() => decode(bytes));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('valid messages with mutated, cut or extended bytes', () => {
    const mutation = fc.record({
      at: fc.nat(),
      value: fc.nat({ max: 255 }),
      cut: fc.nat({ max: 8 }),
      extra: fc.uint8Array({ maxLength: 4 }),
      kind: fc.constantFrom('flip', 'cut', 'extend', 'all'),
    });
    const messages = fc.oneof(
      requestArb.map((r) => ({ bytes: encodeRequest(r), decode: decodeRequest as (b: Uint8Array) => unknown })),
      replyArb.map((r) => ({ bytes: encodeReply(r), decode: (b: Uint8Array): unknown => decodeReply(b, r.op as NativeOpCode) })),
      fc.array(keyArb, { maxLength: 8 }).map((keys) => ({ bytes: encodeLookupKeys(keys), decode: (b: Uint8Array): unknown => decodeLookupKeys(b, keys.length) })),
      scatterArb.map(({ tailBytes, entries }) => ({ bytes: encodeScatter(entries, tailBytes), decode: (b: Uint8Array): unknown => decodeScatter(b, entries.length, tailBytes) })),
    );
    fc.assert(
      fc.property(messages, mutation, ({ bytes, decode }, m) => {
        let b = Buffer.from(bytes);
        if ((m.kind === 'flip' || m.kind === 'all') && b.length > 0) b[m.at % b.length] = m.value;
        if (m.kind === 'cut' || m.kind === 'all') b = b.subarray(0, Math.max(0, b.length - m.cut));
        if (m.kind === 'extend' || m.kind === 'all') b = Buffer.concat([b, m.extra]);
        onlyCodedErrors(() => decode(b));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
