import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTwError } from '@tw/errors';
import { RESP_BULK_BYTES_MAX, RespRequestParser, encodeCommand, respErrorReply, type RespCommand } from '../src/index.js';

interface Outcome {
  commands: string[][];
  error: { code: string; reply: string | null } | null;
  bufferedAfter: number;
}

const hex = (c: RespCommand): string[] => c.map((a) => a.toString('hex'));

/** Parses `chunks` in order, draining after each push; records commands and the error. */
function parseAll(chunks: readonly Buffer[], options: ConstructorParameters<typeof RespRequestParser>[0] = {}): Outcome {
  const parser = new RespRequestParser(options);
  const commands: string[][] = [];
  for (const chunk of chunks) {
    parser.push(chunk);
    for (;;) {
      let cmd: RespCommand | null;
      try {
        cmd = parser.next();
      } catch (err) {
        if (!isTwError(err) || !err.code.startsWith('TW_RESP_')) throw err;
        // Sticky: the parser keeps refusing.
        expect(() => parser.next()).toThrow(err);
        return { commands, error: { code: err.code, reply: respErrorReply(err)?.toString('latin1') ?? null }, bufferedAfter: parser.bufferedBytes };
      }
      if (cmd === null) break;
      commands.push(hex(cmd));
    }
    // Everything pushed was consumed into the parser's state: nothing waits unparsed.
    if (parser.bufferedBytes !== 0) throw new Error(`${parser.bufferedBytes} bytes left unparsed`);
  }
  return { commands, error: null, bufferedAfter: parser.bufferedBytes };
}

function chunked(input: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < input.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length] ?? 1);
    out.push(input.subarray(at, at + n));
    at += n;
  }
  return out;
}

const concat = (cmds: readonly (readonly Buffer[])[]): Buffer => Buffer.concat(cmds.flatMap((c) => encodeCommand(c)));

const argArb = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from('\r\n'), Buffer.from('*1\r\n$3\r\n'), Buffer.alloc(0), Buffer.from([0])) },
  { weight: 1, arbitrary: fc.integer({ min: 16 * 1024 - 3, max: 70 * 1024 }).map((n) => Buffer.alloc(n, n & 0xff)) },
);
const commandArb = fc.array(argArb, { minLength: 1, maxLength: 6 });

describe('RESP request parser: framing', () => {
  test('encodeCommand then parse gives back the commands, for any chunking', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 8 }), (cmds, sizes) => {
        const input = concat(cmds);
        const r = parseAll(chunked(input, sizes));
        expect(r.error).toBeNull();
        expect(r.commands).toEqual(cmds.map((c) => hex(c)));
      }),
      { seed: 101, numRuns: 200 },
    );
  });

  const pipelined = Buffer.concat([
    Buffer.from('*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$7\r\nv\r\n\x00\xff\r\n\r\n', 'latin1'),
    Buffer.from('PING\r\n'),
    Buffer.from('*0\r\n*-1\r\n\r\n'),
    Buffer.from('  GET "a b" \'c\\\'d\'\n'),
    Buffer.from('*2\r\n$4\r\nMGET\r\n$0\r\n\r\n'),
    Buffer.from('*1\r\n$4\r\nPINGxx'),
    Buffer.from('EXISTS k\r\n'),
  ]);
  const expected = [
    ['SET', 'key:1', 'v\r\n\x00\xff\r\n'],
    ['PING'],
    ['GET', 'a b', "c'd"],
    ['MGET', ''],
    ['PING'],
    ['EXISTS', 'k'],
  ].map((c) => c.map((a) => Buffer.from(a, 'latin1').toString('hex')));

  test('every split point of a pipelined input yields the same commands', () => {
    expect(parseAll([pipelined]).commands).toEqual(expected);
    for (let i = 0; i <= pipelined.length; i++) {
      expect(parseAll([pipelined.subarray(0, i), pipelined.subarray(i)]).commands).toEqual(expected);
      for (let j = i + 1; j < pipelined.length; j += 7) {
        expect(parseAll([pipelined.subarray(0, i), pipelined.subarray(i, j), pipelined.subarray(j)]).commands).toEqual(expected);
      }
    }
    expect(parseAll(chunked(pipelined, [1])).commands).toEqual(expected);
  });

  test('inline commands are split as redis-server splits them', () => {
    const cases: [string, string[] | null][] = [
      ['SET k "a\\x41\\n\\t\\"q"\r\n', ['SET', 'k', 'aA\n\t"q']],
      ["GET 'it\\'s'\n", ['GET', "it's"]],
      ['PI"NG"\r\n', ['PING']],
      ['a\x0bb\r\n', ['a\x0bb']],
      ['\x0b a \x0c\r\n', ['a']],
      ['"" x\r\n', ['', 'x']],
      ['PING "a\r\n', null],
      ['PING "a"b\r\n', null],
      ["PING 'a'b\r\n", null],
    ];
    for (const [input, args] of cases) {
      const r = parseAll([Buffer.from(input, 'latin1')]);
      if (args === null) {
        expect(r.error).toEqual({ code: 'TW_RESP_PROTOCOL', reply: '-ERR Protocol error: unbalanced quotes in request\r\n' });
      } else {
        expect(r.commands).toEqual([args.map((a) => Buffer.from(a, 'latin1').toString('hex'))]);
      }
    }
    expect(parseAll([Buffer.from('\r\n\n   \r\n')]).commands).toEqual([]);
  });

  test('the two bytes after a bulk string are skipped unchecked, as Redis does', () => {
    const r = parseAll([Buffer.from('*1\r\n$3\r\nPINGxx*1\r\n$4\r\nPING\r\n')]);
    expect(r.commands.map((c) => c.map((a) => Buffer.from(a, 'hex').toString()))).toEqual([['PIN'], ['x*1'], ['$4'], ['PING']]);
  });

  test('a NUL before the line end hides the end (Redis scans with strchr) until 64 KiB', () => {
    const p = new RespRequestParser();
    p.push(Buffer.from('*1\x00\r\n$4\r\nPING\r\n'));
    expect(p.next()).toBeNull();
    expect(p.bufferedBytes).toBe(0);
    p.push(Buffer.alloc(65_536 - 15, 0x41));
    expect(p.next()).toBeNull();
    p.push(Buffer.from('B'));
    expect(() => p.next()).toThrow(/too big mbulk count string/);
  });
});

describe('RESP request parser: refusals with Redis words', () => {
  const cases: [string, string, string | null][] = [
    ['*x\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*01\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*+1\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*-9223372036854775809\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*2147483648\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*1048577\r\n', 'TW_RESP_LIMIT', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$-1\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid bulk length'],
    ['*1\r\n$\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid bulk length'],
    ['*1\r\n$536870913\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid bulk length'],
    ['*1\r\n:1\r\n', 'TW_RESP_PROTOCOL', "Protocol error: expected '$', got ':'"],
    ['*1\r\n\r\r\n', 'TW_RESP_PROTOCOL', "Protocol error: expected '$', got ' '"],
    ['*1\r\n\n3\r\n', 'TW_RESP_PROTOCOL', "Protocol error: expected '$', got ' '"],
    ['*1\r\n\xff3\r\n', 'TW_RESP_PROTOCOL', "Protocol error: expected '$', got '\xff'"],
    ['x'.repeat(65_537) + '\n', 'TW_RESP_LIMIT', 'Protocol error: too big inline request'],
    ['x'.repeat(65_537), 'TW_RESP_LIMIT', 'Protocol error: too big inline request'],
    ['*' + '1'.repeat(65_535) + '\r\n', 'TW_RESP_LIMIT', 'Protocol error: too big mbulk count string'],
    ['*' + '1'.repeat(65_536), 'TW_RESP_LIMIT', 'Protocol error: too big mbulk count string'],
    ['*' + '1'.repeat(100) + '\r\n', 'TW_RESP_PROTOCOL', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$' + '1'.repeat(65_536), 'TW_RESP_LIMIT', 'Protocol error: too big bulk count string'],
  ];
  test.each(cases.map(([i, c, t]) => [JSON.stringify(i.slice(0, 24)), i, c, t] as const))('%s', (_name, input, code, text) => {
    const whole = parseAll([Buffer.from(input, 'latin1')]);
    expect(whole.error).toEqual({ code, reply: text === null ? null : `-ERR ${text}\r\n` });
    expect(whole.bufferedAfter).toBe(0);
    // Byte by byte: the same refusal.
    if (input.length < 200) expect(parseAll(chunked(Buffer.from(input, 'latin1'), [1])).error).toEqual(whole.error);
  });

  test('lines up to the bound pass', () => {
    expect(parseAll([Buffer.from('x'.repeat(65_536) + '\n')]).commands[0]![0]!.length).toBe(65_536 * 2);
    expect(parseAll(chunked(Buffer.from('y'.repeat(65_535) + '\r\n'), [1000])).commands[0]![0]!.length).toBe(65_535 * 2);
  });

  test('before AUTH: more than 10 arguments or bulk strings over 16 KiB are refused', () => {
    const args = parseAll([Buffer.from('*11\r\n')], { authRequired: true });
    expect(args.error).toEqual({ code: 'TW_RESP_LIMIT', reply: '-ERR Protocol error: unauthenticated multibulk length\r\n' });
    const bulk = parseAll([Buffer.from('*10\r\n$16385\r\n')], { authRequired: true });
    expect(bulk.error).toEqual({ code: 'TW_RESP_LIMIT', reply: '-ERR Protocol error: unauthenticated bulk length\r\n' });
    expect(parseAll([Buffer.from('*10\r\n$16384\r\n')], { authRequired: true }).error).toBeNull();
    expect(parseAll([Buffer.from('*11\r\n$16385\r\n')]).error).toBeNull();
    const p = new RespRequestParser({ authRequired: true });
    p.push(Buffer.from('*2\r\n$4\r\nAUTH\r\n$1\r\nx\r\n*11\r\n'));
    expect(p.next()).not.toBeNull();
    p.authRequired = false;
    expect(p.next()).toBeNull();
  });

  test('a command over commandBytesMax closes without a reply', () => {
    const r = parseAll([Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n')], { commandBytesMax: 64 });
    expect(r.error).toEqual({ code: 'TW_RESP_LIMIT', reply: null });
  });

  test('a lower bulkBytesMax answers as Redis does past proto-max-bulk-len', () => {
    const r = parseAll([Buffer.from('*1\r\n$1025\r\n')], { bulkBytesMax: 1024 });
    expect(r.error).toEqual({ code: 'TW_RESP_LIMIT', reply: '-ERR Protocol error: invalid bulk length\r\n' });
  });
});

describe('RESP request parser: memory', () => {
  test('a declared 512 MiB value allocates only for the bytes that arrived', () => {
    const p = new RespRequestParser();
    const before = process.memoryUsage().arrayBuffers;
    p.push(Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${RESP_BULK_BYTES_MAX}\r\n`));
    expect(p.next()).toBeNull();
    // 4 MiB in small pieces: staged in 64 KiB steps, never sized by the announced length.
    const piece = Buffer.alloc(1000, 7);
    for (let i = 0; i < 4096; i++) {
      p.push(piece);
      expect(p.next()).toBeNull();
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    expect(p.bufferedBytes).toBe(0);
  });

  test('a large value arriving in pieces is assembled once, exactly', () => {
    const value = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
    const input = concat([[Buffer.from('SET'), Buffer.from('k'), value]]);
    for (const sizes of [[65_536], [1, 7, 16_384, 100_000], [3 * 1024 * 1024 + 40]]) {
      const r = parseAll(chunked(input, sizes));
      expect(r.commands.length).toBe(1);
      expect(Buffer.from(r.commands[0]![2]!, 'hex').equals(value)).toBe(true);
    }
  });
});

describe('RESP request parser: fuzz', () => {
  const smallCommand = fc.array(fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)), { minLength: 1, maxLength: 5 });
  const validStream = fc.array(smallCommand.map((c) => encodeCommand(c)), { minLength: 1, maxLength: 5 }).map((cmds) => Buffer.concat(cmds.flat()));
  const mutated = fc
    .tuple(validStream, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 })), { maxLength: 6 }))
    .map(([b, edits]) => {
      const bytes = [...b];
      for (const [at, v, op] of edits) {
        if (bytes.length === 0) break;
        const i = at % bytes.length;
        if (op === 0) bytes[i] = v;
        else if (op === 1) bytes.splice(i, 1);
        else bytes.splice(i, 0, [0x2a, 0x24, 0x0d, 0x0a, 0x30, 0x31, 0x39, 0x2d, 0x22, 0x00][v % 10]!);
      }
      return Buffer.from(bytes);
    });
  const randomBytes = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));

  test('random and mutated input: commands or a coded TW_RESP_ error, the same for any chunking', () => {
    fc.assert(
      fc.property(fc.oneof(mutated, randomBytes), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 6 }), (input, sizes) => {
        const whole = parseAll([input]);
        const pieces = parseAll(chunked(input, sizes));
        expect(pieces).toEqual(whole);
        if (whole.error !== null) expect(whole.error.code).toMatch(/^TW_RESP_(PROTOCOL|LIMIT)$/);
      }),
      { seed: 202, numRuns: 1000 },
    );
  });
});
