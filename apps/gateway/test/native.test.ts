/** The native front-end against a real gateway (real coordinator, six real storage nodes), through @tw/client. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATIVE_LOOKUP_KEYS_MAX, NATIVE_PROTOCOL_VERSION, NativeOp, type NativeOpCode, type TwClient, connectClient, decodeReply, decodeRequest, encodeRequest } from '@tw/client';
import { checksum64 } from '@tw/block-format';
import { LOOKUP_KEYS_MAX } from '@tw/gateway-core';
import { CoordinatorClient } from '@tw/rpc';
import { FrameKind } from '@tw/transport';
import { encodeFrameHead, tcpTransport } from '@tw/transport-tcp';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import type { RunningGateway } from '../src/index.js';
import { Cluster } from './cluster.js';
import { RawSocket, respCommand } from './raw-socket.js';

const MiB = 1024 * 1024;
let cluster: Cluster;
let gw: RunningGateway;
const clients: TwClient[] = [];
const sockets: RawSocket[] = [];

beforeAll(async () => {
  cluster = await Cluster.start();
  // A namespace whose token only the coordinators know.
  const admin = new CoordinatorClient([cluster.coordinatorAddress], { attemptsMax: 50, backoffMs: 50, backoffMaxMs: 200 });
  try {
    await admin.call('createNamespace', {
      namespace: { name: 'team-c', quotaBytes: '0', defaultTtlMs: '0', redundancy: '', usedBytes: '0', blockCount: '0' },
      token: 'coord-token-c',
      requestId: { clientId: 'native-test', seq: '1' },
      adminToken: '',
    });
  } finally {
    admin.close();
  }
  gw = await cluster.gateway({ namespaces: { 'team-a': { token: 'secret-token-a' } }, native: { port: 0 } });
}, 90_000);
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of sockets.splice(0)) s.close();
});
afterAll(async () => {
  await cluster?.close();
});

async function client(namespace = 'default', token?: string): Promise<TwClient> {
  const c = await connectClient({ address: gw.nativeAddress!, namespace, ...(token === undefined ? {} : { token }) });
  clients.push(c);
  return c;
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

test("the protocol's key-count bound is the gateway's", () => {
  expect(NATIVE_LOOKUP_KEYS_MAX).toBe(LOOKUP_KEYS_MAX);
});

test('put, get, exists, lookupPrefix, delete; many calls in flight', async () => {
  const c = await client();
  const values = Array.from({ length: 16 }, (_, i) => bytes(256 * 1024 + i * 4, i + 1));
  await Promise.all(values.map((v, i) => c.put(`chunk-${i}`, v, { mode: i % 2 === 0 ? 'sync' : 'async' })));
  const got = await Promise.all(values.map((_v, i) => c.get(`chunk-${i}`)));
  got.forEach((g, i) => expect(g?.equals(values[i]!)).toBe(true));
  expect(await c.get('no-such-chunk')).toBeUndefined();
  expect(await c.exists('chunk-3')).toBe(true);
  expect(await c.exists('no-such-chunk')).toBe(false);
  expect(await c.lookupPrefix([...values.map((_v, i) => `chunk-${i}`), 'no-such-chunk', 'chunk-0'])).toEqual({ hits: 16 });
  expect(await c.lookupPrefix([])).toEqual({ hits: 0 });
  expect(await c.delete('chunk-5')).toBe(true);
  expect(await c.get('chunk-5')).toBeUndefined();
  expect(await c.lookupPrefix(['chunk-4', 'chunk-5', 'chunk-6'])).toEqual({ hits: 1 });
  await c.ping();
  // Every request payload was given back to the budget.
  expect(gw.nativeInflightBytes).toBe(0);
}, 60_000);

test('a 64 MiB value round-trips byte-identical, into a caller buffer too', async () => {
  const c = await client();
  const v = bytes(64 * MiB, 99);
  await c.put('big', v, { mode: 'sync' });
  const got = await c.get('big');
  expect(got?.length).toBe(v.length);
  expect(got?.equals(v)).toBe(true);
  const dst = Buffer.alloc(65 * MiB);
  const into = await c.get('big', { into: dst });
  expect(into?.buffer).toBe(dst.buffer);
  expect(into?.equals(v)).toBe(true);
  await expect(c.get('big', { into: Buffer.alloc(MiB) })).rejects.toMatchObject({ code: 'TW_TRANSPORT_DESTINATION_TOO_SMALL' });
  expect(gw.nativeInflightBytes).toBe(0);
}, 120_000);

test('DELIVER writes a value\'s tail into a file in the delivery folder, scattered; the head and the tail checksum come back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-deliver-'));
  try {
    // g1 serves from its DRAM tier (one buffer); g2 starts empty, so it reads the k data
    // fragments from the storage nodes and delivers from several buffers.
    const g1 = await cluster.gateway({ native: { port: 0, deliveryDir: dir } });
    const g2 = await cluster.gateway({ native: { port: 0, deliveryDir: dir } });
    const c1 = await connectClient({ address: g1.nativeAddress!, namespace: 'default' });
    clients.push(c1);
    const c2 = await connectClient({ address: g2.nativeAddress!, namespace: 'default' });
    clients.push(c2);
    expect(c1.deliveryDir).toBe(dir);
    const headBytes = 1000;
    const v = bytes(3 * MiB + headBytes + 4, 7);
    await c1.put('deliver-me', v, { mode: 'sync' });
    const tail = v.subarray(headBytes);
    const a = 1_000_003;
    const b = 2_500_000;
    // Three ranges, out of order in the file, with a gap the gateway must not touch.
    const scatter = [
      { tailOffset: 0, bytes: a, fileOffset: tail.length - a + 4096 },
      { tailOffset: a, bytes: b - a, fileOffset: 0 },
      { tailOffset: b, bytes: tail.length - b, fileOffset: b - a },
    ];
    const fileBytes = tail.length + 4096;
    for (const [c, name] of [[c1, 'dram.bin'], [c2, 'cold.bin']] as const) {
      writeFileSync(join(dir, name), Buffer.alloc(fileBytes, 0xee));
      const r = await c.deliver('deliver-me', { file: name, tailBytes: tail.length, scatter });
      expect(r?.valueBytes).toBe(v.length);
      expect(r?.head.equals(v.subarray(0, headBytes))).toBe(true);
      expect(r?.tailChecksum).toBe(checksum64(tail));
      const f = readFileSync(join(dir, name));
      expect(f.length).toBe(fileBytes);
      for (const e of scatter) expect(f.subarray(e.fileOffset, e.fileOffset + e.bytes).equals(tail.subarray(e.tailOffset, e.tailOffset + e.bytes))).toBe(true);
      expect(f.subarray(tail.length - a, tail.length - a + 4096).every((x) => x === 0xee)).toBe(true);
    }
    // Refusals, each with its code; nothing is created.
    expect(await c1.deliver('no-such-key', { file: 'dram.bin', tailBytes: 10, scatter: [{ tailOffset: 0, bytes: 10, fileOffset: 0 }] })).toBeUndefined();
    const whole = { tailBytes: tail.length, scatter: [{ tailOffset: 0, bytes: 10, fileOffset: 0 }] };
    await expect(c1.deliver('deliver-me', { ...whole, file: 'missing.bin' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_DELIVER_FILE' });
    await expect(c1.deliver('deliver-me', { ...whole, file: 'dram.bin', scatter: [{ tailOffset: 0, bytes: 10, fileOffset: fileBytes - 9 }] })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_DELIVER_FILE' });
    await expect(c1.deliver('deliver-me', { file: 'dram.bin', tailBytes: v.length + 1, scatter: [{ tailOffset: 0, bytes: 10, fileOffset: 0 }] })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_DELIVER_RANGE' });
    await expect(c1.deliver('deliver-me', { file: 'dram.bin', tailBytes: 10, scatter: [{ tailOffset: 0, bytes: 10, fileOffset: 0 }] })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_DELIVER_RANGE' });
    const outside = mkdtempSync(join(tmpdir(), 'tw-deliver-outside-'));
    try {
      writeFileSync(join(outside, 'victim.bin'), Buffer.alloc(64, 1));
      symlinkSync(join(outside, 'victim.bin'), join(dir, 'link.bin'));
      await expect(c1.deliver('deliver-me', { ...whole, file: 'link.bin' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_DELIVER_FILE' });
      expect(readFileSync(join(outside, 'victim.bin')).every((x) => x === 1)).toBe(true);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
    await expect(c1.deliver('deliver-me', { ...whole, file: '../escape.bin' })).rejects.toMatchObject({ code: 'TW_NATIVE_BAD_INPUT' });
    // A gateway without a delivery folder says so in HELLO and refuses DELIVER.
    const plain = await client();
    expect(plain.deliveryDir).toBe('');
    await expect(plain.deliver('deliver-me', { ...whole, file: 'dram.bin' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_DELIVER_OFF' });
    expect(g1.nativeInflightBytes).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

test('auth: config tokens, refused namespaces and tokens, per request', async () => {
  await expect(connectClient({ address: gw.nativeAddress!, namespace: 'team-a' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  await expect(connectClient({ address: gw.nativeAddress!, namespace: 'team-a', token: 'wrong-token' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  await expect(connectClient({ address: gw.nativeAddress!, namespace: 'nobody', token: 'whatever-token' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  const a = await client('team-a', 'secret-token-a');
  await a.put('k', Buffer.from('team-a value'), { mode: 'sync' });
  expect((await a.get('k'))?.toString()).toBe('team-a value');
  // Namespaces never share keys.
  const d = await client();
  expect(await d.get('k')).toBeUndefined();
  // Each request is checked, not only HELLO: a raw request with a wrong token is refused.
  const t = tcpTransport()({});
  try {
    const peer = await t.dial(gw.nativeAddress!);
    const res = await peer.request({ header: encodeRequest({ op: NativeOp.GET, namespace: 'team-a', token: 'wrong-token', key: Buffer.from('k') }) });
    expect(decodeReply(res.header, NativeOp.GET)).toMatchObject({ status: 'error', code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  } finally {
    await t.close();
  }
}, 60_000);

test('tokens from the coordinators open their namespace on every front-end', async () => {
  await expect(connectClient({ address: gw.nativeAddress!, namespace: 'team-c' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  await expect(connectClient({ address: gw.nativeAddress!, namespace: 'team-c', token: 'not-the-token' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  // A namespace without a token on the coordinators is not opened by just any token.
  await expect(connectClient({ address: gw.nativeAddress!, namespace: 'team-a', token: 'coord-token-c' })).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  const c = await client('team-c', 'coord-token-c');
  // A sync put commits through the coordinators, which check the namespace token themselves.
  await c.put('ck', Buffer.from('from the coordinators'), { mode: 'sync' });
  expect((await c.get('ck'))?.toString()).toBe('from the coordinators');

  const url = `${gw.httpUrl!}/v1/namespaces/team-c/blocks/ck`;
  expect((await fetch(url)).status).toBe(401);
  const got = await fetch(url, { headers: { authorization: 'Bearer coord-token-c' } });
  expect(got.status).toBe(200);
  expect(await got.text()).toBe('from the coordinators');

  const s = await RawSocket.open(gw.respAddress!);
  sockets.push(s);
  s.write(respCommand('AUTH', 'team-c', 'coord-token-c'));
  expect((await s.read(5)).toString()).toBe('+OK\r\n');
  s.write(respCommand('GET', 'ck'));
  const want = '$21\r\nfrom the coordinators\r\n';
  expect((await s.read(want.length)).toString()).toBe(want);
}, 60_000);

test('garbage keeps the server serving: coded replies for bad headers, closed connections for bad frames', async () => {
  const t = tcpTransport()({});
  try {
    const peer = await t.dial(gw.nativeAddress!);
    const ask = async (header: Uint8Array, payload?: Uint8Array): Promise<unknown> => {
      try {
        const res = await peer.request(payload === undefined ? { header } : { header, payload });
        return decodeReply(res.header, NativeOp.GET);
      } catch (err) {
        return { thrown: (err as { code?: string }).code };
      }
    };
    const get = encodeRequest({ op: NativeOp.GET, namespace: 'default', token: '', key: Buffer.from('x') });
    expect(await ask(Buffer.from([NATIVE_PROTOCOL_VERSION, NativeOp.GET, 0]))).toMatchObject({ status: 'error', code: 'TW_NATIVE_MALFORMED' });
    expect(await ask(Buffer.from([NATIVE_PROTOCOL_VERSION + 3, NativeOp.GET, 0, 0]))).toMatchObject({ status: 'error', code: 'TW_NATIVE_VERSION' });
    expect(await ask(Buffer.concat([get, Buffer.from([1])]))).toMatchObject({ status: 'error', code: 'TW_NATIVE_MALFORMED' });
    const unknownOp = Buffer.from(get);
    unknownOp[1] = 42;
    // The error reply names the op the client sent, so a client decodes it against its own op.
    const unknown = await peer.request({ header: unknownOp });
    expect(decodeReply(unknown.header, 42 as NativeOpCode)).toMatchObject({ status: 'error', code: 'TW_NATIVE_UNKNOWN_OP' });
    // A payload on an op that takes none is refused before it is received.
    expect(await ask(get, Buffer.alloc(1000))).toMatchObject({ thrown: 'TW_NATIVE_MALFORMED' });
    // A key list that does not match its count.
    const lookup = encodeRequest({ op: NativeOp.LOOKUP_PREFIX, namespace: 'default', token: '', keyCount: 2, prefetch: false });
    const res = await peer.request({ header: lookup, payload: Buffer.from([1, 0, 0x61]) });
    expect(decodeReply(res.header, NativeOp.LOOKUP_PREFIX)).toMatchObject({ status: 'error', code: 'TW_NATIVE_MALFORMED' });
    // Random headers, seeded: every one gets a coded reply.
    let x = 12345;
    for (let i = 0; i < 200; i++) {
      const h = Buffer.alloc(1 + (i % 40));
      for (let j = 0; j < h.length; j++) {
        x = (x * 1103515245 + 12345) >>> 0;
        h[j] = x >>> 24;
      }
      if (i % 3 === 0) h[0] = NATIVE_PROTOCOL_VERSION;
      let valid = true;
      try {
        decodeRequest(h);
      } catch {
        valid = false;
      }
      const r = await peer.request({ header: h });
      expect(r.header[0]).toBe(NATIVE_PROTOCOL_VERSION);
      if (!valid) expect(r.header[2]).toBe(2); // status ERROR, with a code
    }
  } finally {
    await t.close();
  }
  // Bytes that are not frames: the server closes that connection (after a coded error frame).
  const s = await RawSocket.open(gw.nativeAddress!);
  sockets.push(s);
  s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4)));
  const t0 = Date.now();
  while (!s.closed && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
  expect(s.closed).toBe(true);
  // ... after an ERROR frame for the connection (request id 0) that carries the transport's code.
  const prefix = await s.read(16);
  expect(prefix.readUInt8(3)).toBe(FrameKind.ERROR);
  expect(prefix.readUInt32LE(4)).toBe(0);
  const body = JSON.parse((await s.read(prefix.readUInt32LE(8))).toString('utf8')) as { code: string };
  expect(body.code).toBe('TW_TRANSPORT_MALFORMED_FRAME');
  // And the gateway still serves everyone else.
  const c = await client();
  await c.put('after-garbage', Buffer.from('still here'));
  expect((await c.get('after-garbage'))?.toString()).toBe('still here');
  expect(gw.nativeInflightBytes).toBe(0);
}, 60_000);

test('abort: an aborted call rejects at once, the client and the gateway go on', async () => {
  const c = await client();
  const v = bytes(32 * MiB, 5);
  await c.put('abort-me', v, { mode: 'sync' });
  const ac = new AbortController();
  const pending = c.get('abort-me', { signal: ac.signal });
  ac.abort();
  await expect(pending).rejects.toMatchObject({ code: 'TW_TRANSPORT_ABORTED' });
  await expect(c.put('abort-put', v, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'TW_TRANSPORT_ABORTED' });
  expect((await c.get('abort-me'))?.equals(v)).toBe(true);
  // Values over the protocol's bound never leave the client.
  await expect(c.put('too-big', [v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, Buffer.alloc(1)])).rejects.toMatchObject({ code: 'TW_NATIVE_VALUE_TOO_LARGE' });
}, 60_000);

test('process level: tw-gateway serves the native protocol and stops on SIGTERM', async () => {
  const cfg = join(cluster.tempDir('proc'), 'gateway.json');
  writeFileSync(cfg, JSON.stringify({ coordinators: [cluster.coordinatorAddress], native: { host: '127.0.0.1', port: 0 }, logLevel: 'info', dramTierBytes: 64 * MiB }));
  const child = spawn(process.execPath, ['--conditions=tw-source', '--import', 'tsx', join(import.meta.dirname, '..', 'src', 'main.ts'), '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no native endpoint logged: ${out.slice(-2000)}`)), 60_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        for (const line of out.split('\n')) {
          if (!line.includes('native front-end listening')) continue;
          clearTimeout(timer);
          resolve((JSON.parse(line) as { address: string }).address);
        }
      });
      child.once('exit', (code) => reject(new Error(`gateway exited ${code}: ${out.slice(-2000)}`)));
    });
    const c = await connectClient({ address, namespace: 'default' });
    try {
      await c.put('proc-key', Buffer.from('through a process'), { mode: 'sync' });
      expect((await c.get('proc-key'))?.toString()).toBe('through a process');
    } finally {
      await c.close();
    }
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 120_000);

test('request bytes are bounded: over native.inflightBytesMax a request is refused before its bytes arrive', async () => {
  const g = await cluster.gateway({ native: { port: 0, inflightBytesMax: MiB } });
  // A raw request that announces 4 MiB and sends 1000 bytes of it: its bytes are held.
  const s = await RawSocket.open(g.nativeAddress!);
  sockets.push(s);
  const header = encodeRequest({ op: NativeOp.PUT, namespace: 'default', token: '', key: Buffer.from('slow'), sync: false, ttlMs: 0 });
  const payload = bytes(4 * MiB, 3);
  s.write(Buffer.concat([encodeFrameHead(FrameKind.REQUEST, 1, header, payload.length), payload.subarray(0, 1000)]));
  const t0 = Date.now();
  while (g.nativeInflightBytes !== 4 * MiB && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
  expect(g.nativeInflightBytes).toBe(4 * MiB);
  const c = await connectClient({ address: g.nativeAddress!, namespace: 'default' });
  clients.push(c);
  await expect(c.put('fast', Buffer.alloc(512 * 1024))).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_BUSY', retryable: true });
  // Small calls without a payload still pass.
  expect(await c.exists('fast')).toBe(false);
  // The rest arrives: the put runs, its bytes go back, and the refused put now fits.
  s.write(payload.subarray(1000));
  const t1 = Date.now();
  while (g.nativeInflightBytes !== 0 && Date.now() - t1 < 30_000) await new Promise((r) => setTimeout(r, 10));
  expect(g.nativeInflightBytes).toBe(0);
  await c.put('fast', Buffer.alloc(512 * 1024, 1));
  expect((await c.get('slow'))?.equals(payload)).toBe(true);
}, 60_000);

// Last: it stops the coordinator.
test('a coordinator outage keeps coordinator tokens already verified working', async () => {
  const g = await cluster.gateway({ namespaces: { 'team-a': { token: 'secret-token-a' } }, native: { port: 0 }, coordinatorTokens: { cacheMs: 0 } });
  const first = await connectClient({ address: g.nativeAddress!, namespace: 'team-c', token: 'coord-token-c' });
  clients.push(first);
  await cluster.coordinator!.stop();
  // cacheMs 0: every request asks the coordinators again; they do not answer, the verdict stands.
  const again = await connectClient({ address: g.nativeAddress!, namespace: 'team-c', token: 'coord-token-c' });
  clients.push(again);
  await expect(connectClient({ address: g.nativeAddress!, namespace: 'team-c', token: 'never-seen-token' })).rejects.toMatchObject({
    code: 'TW_GATEWAY_APP_TOKEN_CHECK_FAILED',
    retryable: true,
  });
  // Config tokens need no coordinator.
  clients.push(await connectClient({ address: g.nativeAddress!, namespace: 'team-a', token: 'secret-token-a' }));
}, 60_000);
