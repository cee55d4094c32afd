import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTwError } from '@tw/errors';
import {
  LM_CODE,
  LM_COMMAND,
  LM_DTYPE,
  LM_FAIL_REPLY,
  LM_LOCATION,
  LM_MEMORY_FORMAT,
  LM_SUCCESS_REPLY,
  LmReplyParser,
  LmRequestParser,
  decodeLmReplyHeader,
  decodeLmRequestHeader,
  encodeLmGetReply,
  encodeLmReplyHeader,
  encodeLmRequestHeader,
  type LmRequest,
  type LmRequestHeader,
} from '../src/index.js';

// Bytes from Python's struct.pack with LMCache's formats ("iiiiiiiii150s", "iiiiiiiii").
const GOLDEN_PUT_HEADER =
  '010000000010000001000000030000000000000002000000200000001000000080000000' +
  '766c6c6d406d6574612d6c6c616d612f4c6c616d612d332e312d38424031403040376633614062666c6f61743136' +
  '20'.repeat(150 - 46);
const GOLDEN_GET_HEADER = '020000000000000001000000020000000000000000000000000000000000000000000000' + '6bc3a979' + '20'.repeat(146);
const GOLDEN_FAIL_REPLY = '900100000000000001000000020000000000000000000000000000000000000000000000';
const GOLDEN_GET_REPLY = 'c80000000010000001000000030000000200000020000000100000008000000000000000';

const putHeader: LmRequestHeader = {
  command: LM_COMMAND.PUT,
  length: 4096,
  fmt: LM_MEMORY_FORMAT.KV_2LTD,
  dtype: LM_DTYPE.BFLOAT16,
  location: LM_LOCATION.NONE,
  shape: [2, 32, 16, 128],
  key: 'vllm@meta-llama/Llama-3.1-8B@1@0@7f3a@bfloat16',
};

describe('lm:// wire format: the bytes Python struct produces', () => {
  test('request header: nine little-endian int32 then a 150-byte space-padded key', () => {
    expect(encodeLmRequestHeader(putHeader).toString('hex')).toBe(GOLDEN_PUT_HEADER);
    const get = { command: LM_COMMAND.GET, length: 0, fmt: 1, dtype: LM_DTYPE.FLOAT16, location: 0, shape: [0, 0, 0, 0], key: 'k\u00e9y' } as const;
    expect(encodeLmRequestHeader(get).toString('hex')).toBe(GOLDEN_GET_HEADER);
    expect(decodeLmRequestHeader(Buffer.from(GOLDEN_PUT_HEADER, 'hex'))).toEqual(putHeader);
    expect(decodeLmRequestHeader(Buffer.from(GOLDEN_GET_HEADER, 'hex'))).toEqual(get);
  });

  test('reply header: code, length, fmt, dtype, shape0..3, location (location last)', () => {
    expect(LM_FAIL_REPLY.toString('hex')).toBe(GOLDEN_FAIL_REPLY);
    expect(LM_SUCCESS_REPLY.readInt32LE(0)).toBe(200);
    const hit = { code: LM_CODE.SUCCESS, length: 4096, fmt: 1, dtype: LM_DTYPE.BFLOAT16, shape: [2, 32, 16, 128] as const, location: 0 };
    expect(encodeLmReplyHeader(hit).toString('hex')).toBe(GOLDEN_GET_REPLY);
    expect(decodeLmReplyHeader(Buffer.from(GOLDEN_GET_REPLY, 'hex'))).toEqual(hit);
    const pieces = encodeLmGetReply({ fmt: 1, dtype: LM_DTYPE.BFLOAT16, shape: [2, 32, 16, 128], location: 0 }, [Buffer.alloc(4000), Buffer.alloc(96)]);
    expect(pieces[0]!.toString('hex')).toBe(GOLDEN_GET_REPLY);
    expect(pieces.length).toBe(3);
  });

  test('the key is stripped as Python str.strip() does; NULs and inner spaces stay', () => {
    const withKey = (field: Buffer): Buffer => {
      const raw = Buffer.from(GOLDEN_GET_HEADER, 'hex');
      raw.fill(0x20, 36);
      field.copy(raw, 36);
      return raw;
    };
    expect(decodeLmRequestHeader(withKey(Buffer.from('\t a b\u00a0\u3000\u001f', 'utf8'))).key).toBe('a b');
    expect(decodeLmRequestHeader(withKey(Buffer.from('\ufeffk', 'utf8'))).key).toBe('\ufeffk');
    const nulPadded = Buffer.alloc(150);
    nulPadded.write('key', 0);
    expect(decodeLmRequestHeader(withKey(nulPadded)).key).toBe('key' + '\u0000'.repeat(147));
  });

  test('refusals are coded', () => {
    const bad = (mutate: (b: Buffer) => void): string => {
      const b = Buffer.from(GOLDEN_PUT_HEADER, 'hex');
      mutate(b);
      try {
        decodeLmRequestHeader(b);
        return 'accepted';
      } catch (err) {
        return isTwError(err) ? err.code : 'uncoded';
      }
    };
    expect(bad((b) => b.writeInt32LE(6, 0))).toBe('TW_LMCACHE_WIRE_COMMAND');
    expect(bad((b) => b.writeInt32LE(0, 0))).toBe('TW_LMCACHE_WIRE_COMMAND');
    expect(bad((b) => b.writeInt32LE(-1, 4))).toBe('TW_LMCACHE_WIRE_LENGTH');
    expect(bad((b) => b.writeInt32LE(512 * 1024 * 1024 + 1, 4))).toBe('TW_LMCACHE_WIRE_LENGTH');
    expect(bad((b) => b.fill(0x20, 36))).toBe('TW_LMCACHE_WIRE_KEY');
    expect(bad((b) => (b[40] = 0xff))).toBe('TW_LMCACHE_WIRE_KEY');
    // GET ignores its length field, as the reference server does.
    expect(bad((b) => (b.writeInt32LE(2, 0), b.writeInt32LE(-5, 4)))).toBe('accepted');
    const code = (f: () => unknown): string | null => {
      try {
        f();
        return null;
      } catch (err) {
        return isTwError(err) ? err.code : 'uncoded';
      }
    };
    expect(code(() => encodeLmRequestHeader({ ...putHeader, key: 'x'.repeat(151) }))).toBe('TW_LMCACHE_WIRE_KEY');
    expect(code(() => encodeLmRequestHeader({ ...putHeader, fmt: 2 ** 31 }))).toBe('TW_LMCACHE_WIRE_FIELD');
    expect(code(() => encodeLmReplyHeader({ code: 200, length: 0, fmt: 1, dtype: 2, shape: [1, 2, 3] as unknown as [number, number, number, number], location: 0 }))).toBe(
      'TW_LMCACHE_WIRE_FIELD',
    );
  });
});

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const keyArb = fc.string({ minLength: 1, maxLength: 40 }).map((s) => s.trim()).filter((s) => s.length > 0 && !/^\s|\s$/u.test(s) && Buffer.byteLength(s) <= 150);
const requestArb = fc.record({
  command: fc.constantFrom(LM_COMMAND.PUT, LM_COMMAND.GET, LM_COMMAND.EXIST, LM_COMMAND.HEALTH, LM_COMMAND.LIST),
  fmt: int32,
  dtype: int32,
  location: int32,
  shape: fc.tuple(int32, int32, int32, int32),
  key: keyArb,
  payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 16_000, max: 200_000 }).map((n) => new Uint8Array(n).fill(n & 0xff))),
});

function wire(r: typeof requestArb extends fc.Arbitrary<infer T> ? T : never): Buffer {
  const isPut = r.command === LM_COMMAND.PUT;
  const header = encodeLmRequestHeader({ ...r, length: isPut ? r.payload.length : 0 });
  return isPut ? Buffer.concat([header, r.payload]) : header;
}

function parseLm(chunks: readonly Buffer[]): { requests: LmRequest[]; error: string | null } {
  const p = new LmRequestParser();
  const requests: LmRequest[] = [];
  for (const c of chunks) {
    p.push(c);
    try {
      for (let r = p.next(); r !== null; r = p.next()) requests.push(r);
    } catch (err) {
      if (!isTwError(err) || !err.code.startsWith('TW_LMCACHE_')) throw err;
      expect(() => p.next()).toThrow(err);
      return { requests, error: err.code };
    }
    if (p.bufferedBytes !== 0) throw new Error('bytes left unparsed');
  }
  return { requests, error: null };
}

function chunked(input: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < input.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(input.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('lm:// request parser', () => {
  test('round trip of request streams for any chunking (PUT payloads included)', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 5 }), (reqs, sizes) => {
        const input = Buffer.concat(reqs.map(wire));
        const got = parseLm(chunked(input, sizes));
        expect(got.error).toBeNull();
        expect(got.requests.map((r) => ({ ...r, payload: r.payload?.toString('hex') ?? null }))).toEqual(
          reqs.map((r) => ({
            command: r.command,
            length: r.command === LM_COMMAND.PUT ? r.payload.length : 0,
            fmt: r.fmt,
            dtype: r.dtype,
            location: r.location,
            shape: r.shape,
            key: r.key,
            payload: r.command === LM_COMMAND.PUT ? Buffer.from(r.payload).toString('hex') : null,
          })),
        );
      }),
      { seed: 404, numRuns: 150 },
    );
  });

  test('every split point of a PUT, GET, EXIST, HEALTH sequence yields the same requests', () => {
    const payload = Buffer.from('0123456789abcdef'.repeat(4));
    const input = Buffer.concat([
      encodeLmRequestHeader({ ...putHeader, length: payload.length }),
      payload,
      encodeLmRequestHeader({ ...putHeader, command: LM_COMMAND.GET, length: 0 }),
      encodeLmRequestHeader({ ...putHeader, command: LM_COMMAND.EXIST, length: 0 }),
      encodeLmRequestHeader({ ...putHeader, command: LM_COMMAND.HEALTH, length: 0, key: 'h' }),
    ]);
    const whole = parseLm([input]);
    expect(whole.requests.map((r) => r.command)).toEqual([1, 2, 3, 5]);
    expect(whole.requests[0]!.payload!.equals(payload)).toBe(true);
    for (let i = 0; i <= input.length; i++) {
      expect(parseLm([input.subarray(0, i), input.subarray(i)])).toEqual(whole);
    }
    expect(parseLm(chunked(input, [1]))).toEqual(whole);
  });

  test('a declared 512 MiB PUT allocates only for the bytes that arrived', () => {
    const p = new LmRequestParser();
    const before = process.memoryUsage().arrayBuffers;
    p.push(encodeLmRequestHeader({ ...putHeader, length: 512 * 1024 * 1024 }));
    const piece = Buffer.alloc(1000, 1);
    for (let i = 0; i < 2048; i++) {
      p.push(piece);
      expect(p.next()).toBeNull();
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    expect(p.bufferedBytes).toBe(0);
  });

  test('fuzz: random and mutated streams give requests or a coded TW_LMCACHE_ error, whatever the chunking', () => {
    const small = requestArb.map((r) => ({ ...r, payload: r.payload.subarray(0, 300) }));
    const mutated = fc
      .tuple(fc.array(small, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
      .map(([reqs, edits]) => {
        const b = Buffer.from(Buffer.concat(reqs.map(wire)));
        for (const [at, v] of edits) b[at % b.length] = v;
        return b;
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 1000 }).map((a) => Buffer.from(a))), fc.integer({ min: 1, max: 200 }), (input, size) => {
        const whole = parseLm([input]);
        expect(parseLm(chunked(input, [size]))).toEqual(whole);
      }),
      { seed: 405, numRuns: 400 },
    );
  });
});

describe('lm:// reply parser (client side)', () => {
  test('payload follows only a 200 with a positive length; any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.uint8Array({ minLength: 1, maxLength: 2000 })), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 300 }), (replies, size) => {
        const input = Buffer.concat(
          replies.flatMap((r) => (r === null ? [LM_FAIL_REPLY, LM_SUCCESS_REPLY] : encodeLmGetReply({ fmt: 1, dtype: 3, shape: [r.length, 0, 0, 0], location: 0 }, Buffer.from(r)))),
        );
        const p = new LmReplyParser();
        const got: (string | number)[] = [];
        for (const c of chunked(input, [size])) {
          p.push(c);
          for (let r = p.next(); r !== null; r = p.next()) got.push(r.payload === null ? r.header.code : r.payload.toString('hex'));
        }
        expect(got).toEqual(replies.flatMap((r): (string | number)[] => (r === null ? [400, 200] : [Buffer.from(r).toString('hex')])));
      }),
      { seed: 406, numRuns: 200 },
    );
  });

  test('a reply announcing a negative or huge length is refused', () => {
    const p = new LmReplyParser();
    const b = Buffer.from(GOLDEN_GET_REPLY, 'hex');
    b.writeInt32LE(-1, 4);
    p.push(b);
    expect(() => p.next()).toThrow(expect.objectContaining({ code: 'TW_LMCACHE_WIRE_LENGTH' }));
  });
});
