import { describe, expect, test } from 'vitest';
import { defineErrors } from '@tw/errors';
import { RespSession, dispatch, encodeCommand, engineProtocolErrors, respCommandNames, type RespSetOptions } from '../src/index.js';
import { MemoryBackend } from './memory-backend.js';
import { serve } from './serve.js';

const cmd = (...args: (string | Buffer)[]): Buffer[] => args.map((a) => (typeof a === 'string' ? Buffer.from(a, 'latin1') : a));
const text = (pieces: Buffer[]): string => Buffer.concat(pieces).toString('latin1');

class RecordingBackend extends MemoryBackend {
  lastSet: RespSetOptions | null = null;
  override async set(key: Buffer, value: Buffer, options: RespSetOptions) {
    this.lastSet = options;
    return super.set(key, value, options);
  }
}

describe('dispatch: SET options reach the backend as Redis resolves them', () => {
  test('EX/PX are resolved with nowMs, EXAT/PXAT kept, KEEPTTL and conditions passed', async () => {
    const b = new RecordingBackend();
    b.nowMsValue = 1_000_000;
    const run = async (...args: string[]) => text((await dispatch(cmd(...args), b)).reply);
    expect(await run('SET', 'k', 'v', 'EX', '10')).toBe('+OK\r\n');
    expect(b.lastSet).toEqual({ condition: 'always', returnPrevious: false, expireAtMs: 1_010_000, keepTtl: false });
    expect(await run('SET', 'k', 'v', 'px', '25', 'xx')).toBe('+OK\r\n');
    expect(b.lastSet).toEqual({ condition: 'xx', returnPrevious: false, expireAtMs: 1_000_025, keepTtl: false });
    expect(await run('SET', 'k', 'v', 'EXAT', '5000', 'GET')).toBe('$1\r\nv\r\n');
    expect(b.lastSet).toEqual({ condition: 'always', returnPrevious: true, expireAtMs: 5_000_000, keepTtl: false });
    expect(await run('SET', 'j', 'v', 'PXAT', '99', 'NX')).toBe('+OK\r\n');
    expect(b.lastSet).toEqual({ condition: 'nx', returnPrevious: false, expireAtMs: 99, keepTtl: false });
    expect(await run('SET', 'k', 'w', 'KEEPTTL')).toBe('+OK\r\n');
    expect(b.lastSet?.keepTtl).toBe(true);
  });

  test('expiry overflow past int64 once now is added is refused as Redis does', async () => {
    const b = new RecordingBackend();
    b.nowMsValue = 1;
    const max = '9223372036854775807';
    expect(text((await dispatch(cmd('SET', 'k', 'v', 'PX', max), b)).reply)).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(text((await dispatch(cmd('SET', 'k', 'v', 'PXAT', max), b)).reply)).toBe('+OK\r\n');
    b.nowMsValue = 0;
    expect(text((await dispatch(cmd('SET', 'k', 'v', 'PX', max), b)).reply)).toBe('+OK\r\n');
  });

  test('a value handed out in pieces is written unjoined (GET, MGET)', async () => {
    const value = Buffer.alloc(300_000, 3);
    const b = new MemoryBackend();
    b.get = async () => [value.subarray(0, 100_000), value.subarray(100_000)];
    b.mget = async (keys) => keys.map((_k, i) => (i === 1 ? null : [value.subarray(0, 5)]));
    const get = await dispatch(cmd('GET', 'k'), b);
    expect(get.reply.length).toBe(4);
    expect(get.reply[1]!.buffer).toBe(value.buffer);
    expect(text(get.reply)).toBe(`$300000\r\n${value.toString('latin1')}\r\n`);
    expect(text((await dispatch(cmd('MGET', 'a', 'b', 'c'), b)).reply)).toBe('*3\r\n$5\r\n\x03\x03\x03\x03\x03\r\n$-1\r\n$5\r\n\x03\x03\x03\x03\x03\r\n');
  });
});

describe('dispatch: connection state and errors', () => {
  test('LMCache RedisConnector sequence: SET kv_bytes, SET metadata, EXISTS, GET metadata, GET kv_bytes', async () => {
    const kv = Buffer.alloc(70_000, 9);
    const meta = Buffer.alloc(28, 1);
    const input = Buffer.concat(
      [
        encodeCommand(['AUTH', 'pw']),
        encodeCommand(['SET', 'model@1@abckv_bytes', kv]),
        encodeCommand(['SET', 'model@1@abcmetadata', meta]),
        encodeCommand(['EXISTS', 'model@1@abcmetadata']),
        encodeCommand(['GET', 'model@1@abcmetadata']),
        encodeCommand(['GET', 'model@1@abckv_bytes']),
        encodeCommand(['EXISTS', 'other']),
      ].flat(),
    );
    const r = await serve([input], new MemoryBackend('pw'));
    expect(r.out.toString('latin1')).toBe(`+OK\r\n+OK\r\n+OK\r\n:1\r\n$28\r\n${meta.toString('latin1')}\r\n$70000\r\n${kv.toString('latin1')}\r\n:0\r\n`);
  });

  test('unauthenticated: a big value before AUTH closes with the unauthenticated bulk error', async () => {
    const r = await serve([Buffer.concat(encodeCommand(['SET', 'k', Buffer.alloc(20_000)]))], new MemoryBackend('pw'));
    expect(r.out.toString()).toBe('-ERR Protocol error: unauthenticated bulk length\r\n');
    expect(r.closed).toBe(true);
  });

  test('HELLO 3 is refused with NOPROTO (RESP3 not spoken); HELLO 2 answers with the session id', async () => {
    const b = new MemoryBackend();
    expect(text((await dispatch(cmd('HELLO', '3'), b)).reply)).toBe('-NOPROTO unsupported protocol version\r\n');
    const hello = text((await dispatch(cmd('HELLO', '2', 'SETNAME', 'me'), b, { session: new RespSession(42) })).reply);
    expect(hello).toContain('$2\r\nid\r\n:42\r\n');
    expect(hello).toContain('$5\r\nproto\r\n:2\r\n');
  });

  test('CLIENT SETNAME/GETNAME/ID/SETINFO keep per-connection state', async () => {
    const b = new MemoryBackend();
    const session = new RespSession(5);
    const run = async (...args: string[]) => text((await dispatch(cmd(...args), b, { session })).reply);
    expect(await run('CLIENT', 'SETNAME', 'lmcache-worker-1')).toBe('+OK\r\n');
    expect(await run('client', 'getname')).toBe('$16\r\nlmcache-worker-1\r\n');
    expect(await run('CLIENT', 'ID')).toBe(':5\r\n');
    expect(await run('CLIENT', 'SETINFO', 'LIB-NAME', 'redis-py')).toBe('+OK\r\n');
    expect(await run('CLIENT', 'SETINFO', 'lib-ver', '5.0.1')).toBe('+OK\r\n');
    expect(session.libName?.toString()).toBe('redis-py');
    expect(await run('CLIENT', 'SETINFO', 'lib-ver', '5 0')).toBe('-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n');
    expect(await run('CLIENT', 'SETINFO', 'color', 'x')).toBe("-ERR Unrecognized option 'color'\r\n");
    expect(await run('CLIENT', 'SETINFO', 'lib-name')).toBe("-ERR wrong number of arguments for 'client|setinfo' command\r\n");
  });

  test('redis-benchmark and redis-cli connect-time queries', async () => {
    const b = new MemoryBackend();
    expect(text((await dispatch(cmd('CONFIG', 'GET', 'save'), b)).reply)).toBe('*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
    expect(text((await dispatch(cmd('CONFIG', 'GET', 'appendonly'), b)).reply)).toBe('*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n');
    expect(text((await dispatch(cmd('CONFIG', 'GET', '*'), b)).reply)).toBe('*6\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n$9\r\ndatabases\r\n$1\r\n1\r\n');
    expect(text((await dispatch(cmd('COMMAND', 'DOCS'), b)).reply)).toBe('*0\r\n');
    expect(text((await dispatch(cmd('COMMAND', 'COUNT'), b)).reply)).toBe(`:${respCommandNames().length}\r\n`);
    const info = text((await dispatch(cmd('INFO', 'server'), b)).reply);
    expect(info).toMatch(/^\$\d+\r\n# Server\r\nredis_version:7\.0\.15\r\nredis_mode:standalone\r\n/);
    expect(text((await dispatch(cmd('INFO', 'nosuch'), b)).reply)).toBe('$0\r\n\r\n');
  });

  test('backend TwErrors become -ERR <code> replies; aborts and bugs propagate', async () => {
    const other = defineErrors('@tw/engine-protocols-test', { TW_TEST_BACKEND_DOWN: { description: 'test' } });
    const b = new MemoryBackend();
    b.get = async () => {
      throw other.create('TW_TEST_BACKEND_DOWN', 'no storage node\r\nanswered');
    };
    const r = await dispatch(cmd('GET', 'k'), b);
    expect(text(r.reply)).toBe('-ERR TW_TEST_BACKEND_DOWN no storage node  answered\r\n');
    expect(r.close).toBe(false);
    b.exists = async () => {
      throw engineProtocolErrors.create('TW_RESP_ABORTED', 'closed');
    };
    await expect(dispatch(cmd('EXISTS', 'k'), b)).rejects.toMatchObject({ code: 'TW_RESP_ABORTED' });
    b.del = async () => {
      throw new TypeError('bug');
    };
    await expect(dispatch(cmd('DEL', 'k'), b)).rejects.toThrow(TypeError);
  });

  test('the signal reaches the backend', async () => {
    const b = new MemoryBackend();
    let seen: AbortSignal | null = null;
    b.get = async (_k: Buffer, signal: AbortSignal) => {
      seen = signal;
      return null;
    };
    const ac = new AbortController();
    await dispatch(cmd('GET', 'k'), b, { signal: ac.signal });
    expect(seen).toBe(ac.signal);
  });

  test('QUIT and the cross-protocol guard close the connection', async () => {
    const b = new MemoryBackend('pw');
    expect(await dispatch(cmd('quit'), b)).toEqual({ reply: [Buffer.from('+OK\r\n')], close: true });
    expect(await dispatch(cmd('POST', '/'), b)).toEqual({ reply: [], close: true });
    expect(await dispatch(cmd('Host:', 'x'), b)).toEqual({ reply: [], close: true });
    expect(await dispatch(cmd('post\x00junk'), b)).toEqual({ reply: [], close: true });
  });
});
