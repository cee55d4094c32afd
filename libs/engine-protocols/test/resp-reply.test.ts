import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTwError } from '@tw/errors';
import {
  RESP_EMPTY_ARRAY,
  RESP_NOAUTH,
  RESP_NOT_INTEGER,
  RESP_NULL_ARRAY,
  RESP_NULL_BULK,
  RESP_OK,
  RESP_PONG,
  RESP_SYNTAX_ERROR,
  RESP_WRONGPASS,
  RESP_WRONGTYPE,
  RespReplyParser,
  encodeBulkString,
  encodeError,
  encodeInteger,
  encodeReply,
  encodeSimpleString,
  type RespReply,
} from '../src/index.js';

const bytes = (pieces: Buffer | Buffer[]): string => (Buffer.isBuffer(pieces) ? pieces : Buffer.concat(pieces)).toString('latin1');

describe('reply encoders: the bytes redis-server sends', () => {
  test('simple strings', () => {
    expect(bytes(RESP_OK)).toBe('+OK\r\n');
    expect(bytes(RESP_PONG)).toBe('+PONG\r\n');
    expect(bytes(encodeSimpleString('QUEUED'))).toBe('+QUEUED\r\n');
    expect(() => encodeSimpleString('a\r\nb')).toThrow(/assertion failed/);
  });

  test('errors: -ERR unless the message carries its own code; CR/LF become spaces', () => {
    expect(bytes(encodeError('syntax error'))).toBe('-ERR syntax error\r\n');
    expect(bytes(RESP_SYNTAX_ERROR)).toBe('-ERR syntax error\r\n');
    expect(bytes(RESP_WRONGTYPE)).toBe('-WRONGTYPE Operation against a key holding the wrong kind of value\r\n');
    expect(bytes(RESP_NOAUTH)).toBe('-NOAUTH Authentication required.\r\n');
    expect(bytes(RESP_WRONGPASS)).toBe('-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    expect(bytes(RESP_NOT_INTEGER)).toBe('-ERR value is not an integer or out of range\r\n');
    expect(bytes(encodeError('-NOPROTO unsupported protocol version'))).toBe('-NOPROTO unsupported protocol version\r\n');
    expect(bytes(encodeError("unknown command 'a\r\nb', with args beginning with: "))).toBe("-ERR unknown command 'a  b', with args beginning with: \r\n");
    // One char, one byte: client bytes quoted in a message come back unchanged.
    expect(encodeError("got '\xff'").equals(Buffer.from([...Buffer.from("-ERR got '"), 0xff, ...Buffer.from("'\r\n")]))).toBe(true);
  });

  test('integers', () => {
    expect(bytes(encodeInteger(0))).toBe(':0\r\n');
    expect(bytes(encodeInteger(1))).toBe(':1\r\n');
    expect(bytes(encodeInteger(-1))).toBe(':-1\r\n');
    expect(bytes(encodeInteger(1234567))).toBe(':1234567\r\n');
    expect(bytes(encodeInteger(-9223372036854775808n))).toBe(':-9223372036854775808\r\n');
    expect(() => encodeInteger(1.5)).toThrow(/assertion failed/);
  });

  test('bulk strings, null bulk, pieces unjoined', () => {
    expect(bytes(encodeBulkString(Buffer.from('hello')))).toBe('$5\r\nhello\r\n');
    expect(bytes(encodeBulkString(Buffer.alloc(0)))).toBe('$0\r\n\r\n');
    expect(bytes(encodeBulkString(null))).toBe('$-1\r\n');
    expect(bytes(RESP_NULL_BULK)).toBe('$-1\r\n');
    const big = Buffer.alloc(5000, 0x61);
    const pieces = encodeBulkString([big.subarray(0, 10), Buffer.alloc(0), big.subarray(10)]);
    expect(bytes(pieces)).toBe(`$5000\r\n${'a'.repeat(5000)}\r\n`);
    // The value's pieces are written as they are (no copy).
    expect(pieces.some((p) => p.buffer === big.buffer && p.length === 4990)).toBe(true);
    const single = encodeBulkString(big);
    expect(single[1]).toBe(big);
  });

  test('arrays: null, empty, MGET mix of bulk and null, nested', () => {
    expect(bytes(RESP_NULL_ARRAY)).toBe('*-1\r\n');
    expect(bytes(RESP_EMPTY_ARRAY)).toBe('*0\r\n');
    expect(bytes(encodeReply({ kind: 'array', items: null }))).toBe('*-1\r\n');
    const mget: RespReply = {
      kind: 'array',
      items: [
        { kind: 'bulk', value: Buffer.from('1') },
        { kind: 'bulk', value: null },
        { kind: 'bulk', value: Buffer.from('2') },
      ],
    };
    expect(bytes(encodeReply(mget))).toBe('*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n');
    const nested: RespReply = { kind: 'array', items: [{ kind: 'integer', value: 1 }, { kind: 'array', items: [{ kind: 'simple', text: 'x' }, { kind: 'error', text: 'ERR y' }] }] };
    expect(bytes(encodeReply(nested))).toBe('*2\r\n:1\r\n*2\r\n+x\r\n-ERR ERR y\r\n');
  });
});

const replyArb: fc.Arbitrary<RespReply> = fc.letrec<{ reply: RespReply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.stringMatching(/^[ -~]{0,20}$/).map((text): RespReply => ({ kind: 'simple', text })),
    fc.stringMatching(/^-?[A-Z]{1,8} [ -~]{0,20}$/).map((text): RespReply => ({ kind: 'error', text })),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v): RespReply => ({ kind: 'integer', value: Number.isSafeInteger(Number(v)) ? Number(v) : v })),
    fc.option(fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a))).map((value): RespReply => ({ kind: 'bulk', value })),
    fc.option(fc.array(tie('reply'), { maxLength: 5 })).map((items): RespReply => ({ kind: 'array', items })),
  ),
})).reply;

/** What the reply parser returns for an encoded reply (errors get their -ERR prefix in the text). */
function normal(r: RespReply): unknown {
  switch (r.kind) {
    case 'error':
      return { kind: 'error', text: r.text.startsWith('-') ? r.text.slice(1) : `ERR ${r.text}` };
    case 'integer':
      return { kind: 'integer', value: BigInt(r.value).toString() };
    case 'bulk':
      return { kind: 'bulk', value: r.value === null ? null : Buffer.concat(Buffer.isBuffer(r.value) ? [r.value] : [...r.value]).toString('hex') };
    case 'array':
      return { kind: 'array', items: r.items === null ? null : r.items.map(normal) };
    default:
      return r;
  }
}

/** A parsed reply in the same comparable shape (errors as parsed: code included). */
function view(r: RespReply): unknown {
  if (r.kind === 'error') return r;
  if (r.kind === 'array') return { kind: 'array', items: r.items === null ? null : r.items.map(view) };
  return normal(r);
}

describe('reply parser (client side)', () => {
  test('decodes what the encoders produce, for any chunking', () => {
    fc.assert(
      fc.property(fc.array(replyArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 50 }), (replies, size) => {
        const input = Buffer.concat(replies.flatMap((r) => encodeReply(r)));
        const p = new RespReplyParser();
        const got: unknown[] = [];
        for (let at = 0; at < input.length; at += size) {
          p.push(input.subarray(at, at + size));
          for (let r = p.next(); r !== null; r = p.next()) got.push(view(r));
        }
        expect(got).toEqual(replies.map(normal));
        expect(p.bufferedBytes).toBe(0);
      }),
      { seed: 303, numRuns: 300 },
    );
  });

  test('garbage gives TW_RESP_REPLY, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (a) => {
        const p = new RespReplyParser();
        p.push(Buffer.from(a));
        try {
          while (p.next() !== null);
        } catch (err) {
          expect(isTwError(err, 'TW_RESP_REPLY')).toBe(true);
        }
      }),
      { seed: 304, numRuns: 1000 },
    );
  });
});
