import { afterAll, beforeAll, expect, test } from 'vitest';
import type { RunningGateway } from '../src/index.js';
import { Cluster } from './cluster.js';

let cluster: Cluster;
let gw: RunningGateway;
let base: string;

beforeAll(async () => {
  cluster = await Cluster.start();
  gw = await cluster.gateway({ namespaces: { 'team-a': { token: 'secret-token-a' } }, http: { port: 0, bodyBytesMax: 4 * 1024 * 1024 } });
  base = gw.httpUrl!;
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const url = (ns: string, key: string) => `${base}/v1/namespaces/${ns}/blocks/${encodeURIComponent(key)}`;

test('PUT, GET, HEAD, DELETE round trip with an URL-encoded key', async () => {
  const value = bytes(1024 * 1024 + 13, 1);
  const key = 'prompt/chunk 0?x=1#é';
  const put = await fetch(url('default', key), { method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status).toBe(202);
  const got = await fetch(url('default', key));
  expect(got.status).toBe(200);
  expect(got.headers.get('content-type')).toBe('application/octet-stream');
  expect(Buffer.from(await got.arrayBuffer()).equals(value)).toBe(true);
  expect((await fetch(url('default', key), { method: 'HEAD' })).status).toBe(200);
  expect((await fetch(url('default', key), { method: 'DELETE' })).status).toBe(204);
  expect((await fetch(url('default', key), { method: 'HEAD' })).status).toBe(404);
  const miss = await fetch(url('default', key));
  expect(miss.status).toBe(404);
  expect(((await miss.json()) as { code: string }).code).toBe('TW_GATEWAY_APP_NOT_FOUND');
});

test('sync put is committed: a second gateway reads it from the storage nodes', async () => {
  const value = bytes(300_000, 2);
  const put = await fetch(`${url('default', 'sync-key')}?mode=sync`, { method: 'PUT', body: value });
  expect(put.status).toBe(201);
  const other = await cluster.gateway({ resp: undefined, lmcache: undefined });
  const got = await fetch(`${other.httpUrl}/v1/namespaces/default/blocks/sync-key`);
  expect(got.status).toBe(200);
  expect(Buffer.from(await got.arrayBuffer()).equals(value)).toBe(true);
});

test('lookup-prefix counts leading hits (utf8 and base64 keys)', async () => {
  for (const k of ['lp-0', 'lp-1', 'lp-2']) {
    expect((await fetch(`${url('default', k)}?mode=sync`, { method: 'PUT', body: bytes(1000, k.length) })).status).toBe(201);
  }
  const post = async (body: unknown) => {
    const r = await fetch(`${base}/v1/namespaces/default/lookup-prefix`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  expect(await post({ keys: ['lp-0', 'lp-1', 'lp-2', 'lp-3', 'lp-0'] })).toEqual({ status: 200, json: { hits: 3 } });
  expect(await post({ keys: ['lp-0', 'nope', 'lp-2'], prefetch: true })).toEqual({ status: 200, json: { hits: 1 } });
  expect(await post({ keys: ['lp-0', 'lp-1'].map((k) => Buffer.from(k).toString('base64')), encoding: 'base64' })).toEqual({ status: 200, json: { hits: 2 } });
  expect((await post({ keys: 'lp-0' })).json['code']).toBe('TW_GATEWAY_APP_BAD_REQUEST');
  expect((await post({ keys: [1] })).status).toBe(400);
  const notJson = await fetch(`${base}/v1/namespaces/default/lookup-prefix`, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
  expect(notJson.status).toBe(400);
  expect(((await notJson.json()) as { code: string }).code).toBe('TW_GATEWAY_APP_BAD_REQUEST');
});

test('tokens: a namespace with a token needs Authorization: Bearer; unknown namespaces are refused', async () => {
  const v = bytes(5000, 3);
  const noToken = await fetch(url('team-a', 'k'), { method: 'PUT', body: v });
  expect(noToken.status).toBe(401);
  expect(((await noToken.json()) as { code: string }).code).toBe('TW_GATEWAY_APP_UNAUTHORIZED');
  expect((await fetch(url('team-a', 'k'), { method: 'PUT', body: v, headers: { authorization: 'Bearer wrong-token' } })).status).toBe(401);
  expect((await fetch(url('team-a', 'k'), { method: 'PUT', body: v, headers: { authorization: 'Bearer secret-token-a' } })).status).toBe(202);
  const got = await fetch(url('team-a', 'k'), { headers: { authorization: 'Bearer secret-token-a' } });
  expect(Buffer.from(await got.arrayBuffer()).equals(v)).toBe(true);
  expect((await fetch(url('other', 'k'))).status).toBe(401);
});

test('bad input gets coded JSON errors and the server stays up', async () => {
  const big = await fetch(url('default', 'big'), { method: 'PUT', body: Buffer.alloc(4 * 1024 * 1024 + 1) });
  expect(big.status).toBe(413);
  expect(((await big.json()) as { code: string }).code).toBe('TW_GATEWAY_APP_BODY_TOO_LARGE');
  const longKey = await fetch(url('default', 'k'.repeat(600)), { method: 'PUT', body: Buffer.alloc(10) });
  expect(longKey.status).toBe(400);
  expect(((await longKey.json()) as { code: string }).code).toMatch(/^TW_/);
  const badNs = await fetch(url('Bad%20NS!', 'k'));
  expect(badNs.status).toBe(401);
  const badPct = await fetch(`${base}/v1/namespaces/default/blocks/%E0%A4%A`);
  expect(badPct.status).toBe(400);
  const noRoute = await fetch(`${base}/v2/whatever`);
  expect(noRoute.status).toBe(404);
  expect(((await noRoute.json()) as { code: string }).code).toBe('TW_GATEWAY_APP_NOT_FOUND');
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
});

test('/readyz, /healthz and /metrics', async () => {
  expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready' });
  const text = await (await fetch(`${base}/metrics`)).text();
  expect(text).toMatch(/tw_gateway_ops_total\{op="put",outcome="ok"\} \d+/);
  expect(text).toMatch(/tw_gateway_ops_total\{op="get",outcome="miss"\} \d+/);
  expect(text).toMatch(/tw_gateway_dram_tier_bytes \d+/);
  expect(text).toMatch(/tw_gateway_op_duration_seconds_bucket/);
  expect(text).toMatch(/tw_gateway_requests_total\{frontend="http"/);
});

test('a chunked PUT body (no Content-Length) is stored whole', async () => {
  const parts = [bytes(70_000, 5), bytes(1, 6), bytes(200_000, 7)];
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of parts) controller.enqueue(p);
      controller.close();
    },
  });
  const put = await fetch(url('default', 'chunked'), { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
  expect(put.status).toBe(202);
  const got = await fetch(url('default', 'chunked'));
  expect(Buffer.from(await got.arrayBuffer()).equals(Buffer.concat(parts))).toBe(true);
});

test('request bodies in flight are bounded: over the bound a PUT gets 503 TW_GATEWAY_APP_BUSY, then the bytes are released', async () => {
  const small = await cluster.gateway({ resp: undefined, lmcache: undefined, http: { port: 0, bodyBytesMax: 1024 * 1024, bodyInflightBytesMax: 64 * 1024 } });
  const u = (k: string) => `${small.httpUrl}/v1/namespaces/default/blocks/${k}`;
  const over = await fetch(u('over'), { method: 'PUT', body: bytes(100 * 1024, 8) });
  expect(over.status).toBe(503);
  expect(((await over.json()) as { code: string }).code).toBe('TW_GATEWAY_APP_BUSY');
  // Sequential puts under the bound always fit: the bytes of finished requests were released.
  for (let i = 0; i < 5; i++) expect((await fetch(u(`ok-${i}`), { method: 'PUT', body: bytes(60 * 1024, 9 + i) })).status).toBe(202);
});
