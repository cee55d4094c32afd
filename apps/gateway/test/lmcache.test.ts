import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import type { RunningGateway } from '../src/index.js';
import { Cluster } from './cluster.js';
import { RawSocket } from './raw-socket.js';

let cluster: Cluster;
let gw: RunningGateway;
const sockets: RawSocket[] = [];

beforeAll(async () => {
  cluster = await Cluster.start();
  gw = await cluster.gateway();
}, 60_000);
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});
afterAll(async () => {
  await cluster?.close();
});

/** LMCache's ClientMetaMessage: struct "iiiiiiiii150s" (command, length, fmt, dtype, location, shape0..3, key padded with spaces). */
function request(command: number, key: string, length = 0, meta: { fmt?: number; dtype?: number; location?: number; shape?: number[] } = {}): Buffer {
  const b = Buffer.alloc(186);
  const shape = meta.shape ?? [0, 0, 0, 0];
  [command, length, meta.fmt ?? 0, meta.dtype ?? 0, meta.location ?? 0, ...shape].forEach((v, i) => b.writeInt32LE(v, i * 4));
  b.write(key.padEnd(150, ' '), 36, 'utf8');
  return b;
}

/** ServerMetaMessage: struct "iiiiiiiii" (code, length, fmt, dtype, shape0..3, location). */
function reply(b: Buffer): { code: number; length: number; fmt: number; dtype: number; shape: number[]; location: number } {
  const f = Array.from({ length: 9 }, (_, i) => b.readInt32LE(i * 4));
  return { code: f[0]!, length: f[1]!, fmt: f[2]!, dtype: f[3]!, shape: f.slice(4, 8), location: f[8]! };
}

async function open(): Promise<RawSocket> {
  const s = await RawSocket.open(gw.lmcacheAddress!);
  sockets.push(s);
  return s;
}

test('PUT (no reply), EXIST, GET with the PUT\'s fmt / dtype / shape, HEALTH, misses', async () => {
  const s = await open();
  s.write(request(5, 'health'));
  expect(reply(await s.read(36)).code).toBe(200);
  const payload = Buffer.alloc(2 * 1024 * 1024 + 3);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13 + 1) & 0xff;
  const key = 'vllm@model@1@0@deadbeef';
  const meta = { fmt: 1, dtype: 3, location: 1, shape: [2, 32, 256, 1024] };
  // PUT split at odd boundaries, then EXIST in the same write: one request at a time, in order.
  const put = Buffer.concat([request(1, key, payload.length, meta), payload, request(3, key)]);
  for (let i = 0; i < put.length; i += 77_777) s.write(put.subarray(i, i + 77_777));
  expect(reply(await s.read(36)).code).toBe(200);
  s.write(request(2, key));
  const h = reply(await s.read(36));
  expect(h).toEqual({ code: 200, length: payload.length, fmt: 1, dtype: 3, shape: [2, 32, 256, 1024], location: 1 });
  expect((await s.read(payload.length)).equals(payload)).toBe(true);
  s.write(request(3, 'absent-key'));
  expect(reply(await s.read(36)).code).toBe(400);
  s.write(request(2, 'absent-key'));
  expect(reply(await s.read(36))).toEqual({ code: 400, length: 0, fmt: 1, dtype: 2, shape: [0, 0, 0, 0], location: 0 });
});

test('a bad header closes the connection; the server keeps serving', async () => {
  const s = await open();
  s.write(request(99, 'x'));
  expect((await s.readToClose()).length).toBe(0);
  const t = await open();
  t.write(request(1, 'neg', -5));
  expect((await t.readToClose()).length).toBe(0);
  const u = await open();
  u.write(request(5, 'health'));
  expect(reply(await u.read(36)).code).toBe(200);
});

test('lm:// values go to the configured namespace behind a 32-byte meta header', async () => {
  const s = await open();
  const payload = Buffer.from('lmcache-bytes');
  s.write(Buffer.concat([request(1, 'shared-key', payload.length, { fmt: 4, dtype: 6, shape: [13, 0, 0, 0] }), payload, request(3, 'shared-key')]));
  expect(reply(await s.read(36)).code).toBe(200);
  const v = await gw.gateway.get('default', Buffer.from('shared-key'));
  // Stored behind a 32-byte meta header ("TWLM" + fmt, dtype, location, shape).
  expect(v?.subarray(32).toString()).toBe('lmcache-bytes');
});

test('a Python client written from the struct layouts: PUT, EXIST, GET, misses', async () => {
  const address = gw.lmcacheAddress!;
  const i = address.lastIndexOf(':');
  const { stdout } = await promisify(execFile)('python3', [join(import.meta.dirname, 'lm_client.py'), address.slice(0, i), address.slice(i + 1)], { timeout: 30_000 });
  expect(stdout).toBe('OK\n');
}, 40_000);
