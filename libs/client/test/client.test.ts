/**
 * TwClient against a small native-protocol server built from the same codec over real TCP (an
 * in-memory map behind it). The gateway's own front-end is tested in apps/gateway/test.
 */
import { TwError } from '@tw/errors';
import type { Listener, Reply, Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { NATIVE_PAYLOAD_BYTES_MAX, NativeOp, type TwClient, connectClient, decodeLookupKeys, decodeRequest, encodeReply, errorReplyOf } from '../src/index.js';

let server: Transport;
let listener: Listener;
const store = new Map<string, Buffer>();
/** Keys whose GET waits until aborted (for the abort test). */
const stalled = new Set<string>(['stall']);
let version = 0n;

beforeAll(async () => {
  server = tcpTransport({ payloadBytesMax: NATIVE_PAYLOAD_BYTES_MAX })({});
  listener = await server.listen('127.0.0.1:0', async (req, ctx): Promise<Reply> => {
    let op = 0;
    try {
      const r = decodeRequest(req.header);
      op = r.op;
      if (r.op !== NativeOp.PING && r.token !== 'good-token') throw new TwError('TW_GATEWAY_APP_UNAUTHORIZED', 'bad token');
      switch (r.op) {
        case NativeOp.HELLO:
          return { header: encodeReply({ op: r.op, status: 'ok', valueBytesMax: NATIVE_PAYLOAD_BYTES_MAX, lookupKeysMax: 100, keyBytesMax: 512, deliveryDir: '' }) };
        case NativeOp.PING:
          return { header: encodeReply({ op: r.op, status: 'ok' }) };
        case NativeOp.PUT:
          store.set(Buffer.from(r.key).toString('hex'), Buffer.from(req.payload));
          return { header: encodeReply({ op: r.op, status: 'ok', version: ++version }) };
        case NativeOp.GET: {
          const k = Buffer.from(r.key).toString();
          if (stalled.has(k)) await new Promise((_res, rej) => ctx.signal.addEventListener('abort', () => rej(new TwError('TW_X', 'aborted')), { once: true }));
          const v = store.get(Buffer.from(r.key).toString('hex'));
          return v === undefined ? { header: encodeReply({ op: r.op, status: 'not_found' }) } : { header: encodeReply({ op: r.op, status: 'ok', valueBytes: v.length }), payload: v };
        }
        case NativeOp.EXISTS:
          return { header: encodeReply({ op: r.op, status: 'ok', yes: store.has(Buffer.from(r.key).toString('hex')) }) };
        case NativeOp.DELETE:
          return { header: encodeReply({ op: r.op, status: 'ok', yes: store.delete(Buffer.from(r.key).toString('hex')) }) };
        case NativeOp.LOOKUP_PREFIX: {
          const keys = decodeLookupKeys(req.payload, r.keyCount);
          let hits = 0;
          while (hits < keys.length && store.has(keys[hits]!.toString('hex'))) hits++;
          return { header: encodeReply({ op: r.op, status: 'ok', hits }) };
        }
        case NativeOp.DELIVER:
          // This server announced no delivery folder (the gateway's own test drives DELIVER).
          throw new TwError('TW_GATEWAY_APP_DELIVER_OFF', 'no delivery folder');
      }
    } catch (err) {
      return { header: encodeReply(errorReplyOf(op, err)) };
    }
  });
});

afterAll(async () => {
  await listener?.close();
  await server?.close();
});

async function client(token = 'good-token'): Promise<TwClient> {
  return connectClient({ address: listener.address, namespace: 'ns', token });
}

test('put, get, exists, delete, lookupPrefix, many calls in flight', async () => {
  const c = await client();
  try {
    expect(c.serverLimits.lookupKeysMax).toBe(100);
    const values = Array.from({ length: 32 }, (_, i) => Buffer.alloc(1000 + i * 4099, i + 1));
    await Promise.all(values.map((v, i) => c.put(`k${i}`, i % 2 === 0 ? v : [v.subarray(0, 7), v.subarray(7)], { mode: i % 3 === 0 ? 'sync' : 'async' })));
    const got = await Promise.all(values.map((_v, i) => c.get(`k${i}`)));
    got.forEach((g, i) => expect(g?.equals(values[i]!)).toBe(true));
    expect(await c.get('missing')).toBeUndefined();
    expect(await c.exists('k1')).toBe(true);
    expect(await c.lookupPrefix(['k0', 'k1', 'nope', 'k2'])).toEqual({ hits: 2 });
    expect(await c.delete('k1')).toBe(true);
    expect(await c.delete('k1')).toBe(false);
    expect(await c.exists('k1')).toBe(false);
    await c.ping();
  } finally {
    await c.close();
  }
});

test('get into a caller buffer: a view of it; too small is a coded error and the client stays usable', async () => {
  const c = await client();
  try {
    const v = Buffer.alloc(300_000, 7);
    await c.put('into', v);
    const dst = Buffer.alloc(400_000);
    const got = await c.get('into', { into: dst });
    expect(got?.buffer).toBe(dst.buffer);
    expect(got?.equals(v)).toBe(true);
    await expect(c.get('into', { into: Buffer.alloc(10) })).rejects.toMatchObject({ code: 'TW_TRANSPORT_DESTINATION_TOO_SMALL' });
    expect((await c.get('into'))?.equals(v)).toBe(true);
  } finally {
    await c.close();
  }
});

test("errors carry the server's code; bad input fails before sending", async () => {
  await expect(client('bad-token')).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_UNAUTHORIZED' });
  const c = await client();
  try {
    await expect(c.get(Buffer.alloc(513))).rejects.toMatchObject({ code: 'TW_KEY_TOO_LONG' });
    await expect(c.lookupPrefix(Array.from({ length: 101 }, (_, i) => `k${i}`))).rejects.toMatchObject({ code: 'TW_NATIVE_TOO_MANY_KEYS' });
    await expect(c.put('k', 'not bytes' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'TW_NATIVE_BAD_INPUT' });
  } finally {
    await c.close();
  }
  await expect(c.get('k')).rejects.toMatchObject({ code: 'TW_NATIVE_CLOSED' });
});

test('an aborted call rejects at once with TW_TRANSPORT_ABORTED; others go on', async () => {
  const c = await client();
  try {
    const ac = new AbortController();
    const stalledGet = c.get('stall', { signal: ac.signal });
    await c.put('after', Buffer.from('x'));
    ac.abort();
    await expect(stalledGet).rejects.toMatchObject({ code: 'TW_TRANSPORT_ABORTED' });
    expect((await c.get('after'))?.toString()).toBe('x');
    await expect(c.get('after', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'TW_TRANSPORT_ABORTED' });
  } finally {
    await c.close();
  }
});
