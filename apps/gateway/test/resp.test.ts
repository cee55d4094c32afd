import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import type { RunningGateway } from '../src/index.js';
import { Cluster } from './cluster.js';
import { RawSocket, respCommand } from './raw-socket.js';

const run = promisify(execFile);
let cluster: Cluster;
let gw: RunningGateway;
const sockets: RawSocket[] = [];

beforeAll(async () => {
  cluster = await Cluster.start();
  gw = await cluster.gateway({ namespaces: { 'team-a': { token: 'secret-token-a' } } });
}, 60_000);
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});
afterAll(async () => {
  await cluster?.close();
});

async function open(address = gw.respAddress!): Promise<RawSocket> {
  const s = await RawSocket.open(address);
  sockets.push(s);
  return s;
}

/** Sends `input` in pieces of seeded odd sizes (1..7 bytes, and some large), and reads `expected.length` bytes. */
async function exchange(s: RawSocket, input: Buffer, expected: string | Buffer, seed = 7): Promise<void> {
  let x = seed;
  for (let i = 0; i < input.length; ) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = x % 5 === 0 ? 1 + (x % 65_537) : 1 + (x % 7);
    s.write(input.subarray(i, i + n));
    i += n;
  }
  const want = typeof expected === 'string' ? Buffer.from(expected, 'latin1') : expected;
  const got = await s.read(want.length);
  expect(got.toString('latin1')).toBe(want.toString('latin1'));
}

test('the commands LMCache uses answer the bytes Redis sends', async () => {
  const s = await open();
  await exchange(s, respCommand('PING'), '+PONG\r\n');
  await exchange(s, Buffer.from('PING\r\n'), '+PONG\r\n');
  await exchange(s, respCommand('SET', 'k1', 'hello'), '+OK\r\n');
  await exchange(s, respCommand('GET', 'k1'), '$5\r\nhello\r\n');
  await exchange(s, respCommand('GET', 'missing'), '$-1\r\n');
  await exchange(s, respCommand('EXISTS', 'k1', 'k1', 'missing'), ':2\r\n');
  await exchange(s, respCommand('SET', 'k2', ''), '+OK\r\n');
  await exchange(s, respCommand('MGET', 'k1', 'missing', 'k2'), '*3\r\n$5\r\nhello\r\n$-1\r\n$0\r\n\r\n');
  await exchange(s, respCommand('DEL', 'k1', 'k1', 'missing'), ':1\r\n');
  await exchange(s, respCommand('GET', 'k1'), '$-1\r\n');
  await exchange(s, respCommand('GET'), "-ERR wrong number of arguments for 'get' command\r\n");
  await exchange(s, respCommand('NOSUCH', 'a'), "-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n");
  // A gateway refusal is an -ERR with its code; the connection stays.
  const tooLong = Buffer.alloc(600, 0x61);
  s.write(respCommand('SET', tooLong, 'v'));
  expect(await s.readLine()).toMatch(/^-ERR TW_[A-Z_]+ .*\r\n$/);
  await exchange(s, respCommand('PING'), '+PONG\r\n');
});

test('pipelined commands split at odd byte boundaries answer in order, as sequential execution', async () => {
  const s = await open();
  const big = Buffer.alloc(3 * 1024 * 1024 + 5);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  const input = Buffer.concat([
    respCommand('SET', 'p', 'one'),
    respCommand('GET', 'p'),
    respCommand('SET', 'p', 'two'),
    respCommand('GET', 'p'),
    respCommand('SET', 'big', big),
    respCommand('EXISTS', 'p', 'big'),
    respCommand('DEL', 'p'),
    respCommand('GET', 'p'),
    respCommand('GET', 'big'),
    respCommand('PING'),
  ]);
  const expected = Buffer.concat([
    Buffer.from('+OK\r\n$3\r\none\r\n+OK\r\n$3\r\ntwo\r\n+OK\r\n:2\r\n:1\r\n$-1\r\n'),
    Buffer.from(`$${big.length}\r\n`),
    big,
    Buffer.from('\r\n+PONG\r\n'),
  ]);
  for (const seed of [1, 2, 3]) await exchange(s, input, expected, seed);
  // Many small pipelined commands: more than the pending bound, replies in order.
  const many: Buffer[] = [];
  let want = '';
  for (let i = 0; i < 300; i++) {
    many.push(respCommand('SET', `m${i}`, `v${i}`), respCommand('GET', `m${i}`));
    want += `+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`;
  }
  await exchange(s, Buffer.concat(many), want, 9);
});

test("LMCache's Python RedisConnector sequence: kv_bytes and a 28-byte metadata per chunk", async () => {
  const s = await open();
  const kv = Buffer.alloc(256 * 1024);
  for (let i = 0; i < kv.length; i++) kv[i] = (i * 7) & 0xff;
  const meta = Buffer.alloc(28);
  meta.writeInt32LE(1, 0);
  meta.writeInt32LE(2, 4);
  const key = 'vllm@1@0@0@abcdef0123';
  await exchange(s, Buffer.concat([respCommand('SET', `${key}kv_bytes`, kv), respCommand('SET', `${key}metadata`, meta)]), '+OK\r\n+OK\r\n');
  await exchange(s, respCommand('EXISTS', `${key}metadata`), ':1\r\n');
  await exchange(s, respCommand('GET', `${key}metadata`), Buffer.concat([Buffer.from('$28\r\n'), meta, Buffer.from('\r\n')]));
  await exchange(s, respCommand('GET', `${key}kv_bytes`), Buffer.concat([Buffer.from(`$${kv.length}\r\n`), kv, Buffer.from('\r\n')]));
});

test('protocol errors answer Redis\'s error then close; garbage never crashes the server', async () => {
  const s = await open();
  s.write('*1\r\n$abc\r\n');
  expect((await s.readToClose()).toString('latin1')).toBe('-ERR Protocol error: invalid bulk length\r\n');
  let x = 12345;
  for (let round = 0; round < 20; round++) {
    const g = await open();
    const junk = Buffer.alloc(2000);
    for (let i = 0; i < junk.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      junk[i] = x >>> 24;
    }
    g.write(junk);
    g.socket.end();
    await g.readToClose().catch(() => Buffer.alloc(0));
  }
  const after = await open();
  await exchange(after, respCommand('PING'), '+PONG\r\n');
});

test('AUTH: namespace tokens; NOAUTH and WRONGPASS as Redis words them', async () => {
  const closed = await cluster.gateway({ openDefaultNamespace: 'none', putMode: 'sync', namespaces: { 'team-a': { token: 'secret-token-a' } }, http: undefined, lmcache: undefined });
  const s = await open(closed.respAddress!);
  await exchange(s, respCommand('PING'), '-NOAUTH Authentication required.\r\n');
  await exchange(s, respCommand('GET', 'x'), '-NOAUTH Authentication required.\r\n');
  await exchange(s, respCommand('AUTH', 'wrong-token'), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
  await exchange(s, respCommand('AUTH', 'secret-token-a'), '+OK\r\n');
  await exchange(s, respCommand('SET', 'x', 'in-team-a'), '+OK\r\n');
  await exchange(s, respCommand('GET', 'x'), '$9\r\nin-team-a\r\n');
  // AUTH <namespace> <token> form, on the open gateway; the value is namespaced.
  const t = await open();
  await exchange(t, respCommand('GET', 'x'), '$-1\r\n');
  await exchange(t, respCommand('AUTH', 'team-a', 'secret-token-a'), '+OK\r\n');
  // The sync SET committed it: this other gateway (no DRAM copy) serves it from the storage nodes.
  await exchange(t, respCommand('GET', 'x'), '$9\r\nin-team-a\r\n');
  await exchange(t, respCommand('AUTH', 'team-a', 'nope-nope'), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
});

test('redis-cli and redis-benchmark (Debian redis-tools) work against the gateway', async () => {
  const [host, port] = [gw.respAddress!.slice(0, gw.respAddress!.lastIndexOf(':')), gw.respAddress!.slice(gw.respAddress!.lastIndexOf(':') + 1)];
  const cli = async (...args: string[]) => (await run('redis-cli', ['-h', host, '-p', port, ...args], { timeout: 20_000 })).stdout;
  expect(await cli('PING')).toBe('PONG\n');
  expect(await cli('SET', 'cli-key', 'cli value')).toBe('OK\n');
  expect(await cli('GET', 'cli-key')).toBe('cli value\n');
  expect(await cli('EXISTS', 'cli-key', 'nope')).toBe('1\n');
  expect(await cli('MGET', 'cli-key', 'nope')).toBe('cli value\n\n');
  expect(await cli('DEL', 'cli-key')).toBe('1\n');
  const bench = await run('redis-benchmark', ['-h', host, '-p', port, '-t', 'set,get', '-n', '2000', '-d', '65536', '-P', '8', '-c', '8', '-q'], { timeout: 120_000, maxBuffer: 1 << 20 });
  const out = bench.stdout.replace(/\r/g, '\n');
  expect(out).toMatch(/SET: [\d.]+ requests per second/);
  expect(out).toMatch(/GET: [\d.]+ requests per second/);
  // The value redis-benchmark wrote is a 64 KiB value of 'x'.
  const v = await gw.gateway.get('default', Buffer.from('key:__rand_int__'));
  expect(v?.length).toBe(65536);
}, 150_000);

test('a 24 MiB value in one SET, sent in 1 MiB writes, reads back byte-identical', async () => {
  const s = await open();
  const big = Buffer.alloc(24 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const input = respCommand('SET', 'huge', big);
  for (let i = 0; i < input.length; i += 1024 * 1024) s.write(input.subarray(i, i + 1024 * 1024));
  expect(await s.readLine()).toBe('+OK\r\n');
  s.write(respCommand('GET', 'huge'));
  expect(await s.readLine()).toBe(`$${big.length}\r\n`);
  expect((await s.read(big.length + 2)).equals(Buffer.concat([big, Buffer.from('\r\n')]))).toBe(true);
}, 60_000);
