import { Counter } from 'prom-client';
import { Writable } from 'node:stream';
import { afterEach, expect, test } from 'vitest';
import { type AdminHttp, createLogger, createMetricsRegistry, startAdminHttp } from '../src/index.js';

const servers: AdminHttp[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

test('healthz, readyz and metrics', async () => {
  const registry = createMetricsRegistry();
  const puts = new Counter({ name: 'tw_test_puts_total', help: 'puts', registers: [registry] });
  puts.inc(3);
  let ready = false;
  const s = await startAdminHttp({ host: '127.0.0.1', port: 0, registry, readiness: () => (ready ? { ready } : { ready, reason: 'replaying' }) });
  servers.push(s);
  expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ status: 'ok' });
  const notReady = await fetch(`${s.url}/readyz`);
  expect(notReady.status).toBe(503);
  expect(await notReady.json()).toEqual({ status: 'not-ready', reason: 'replaying' });
  ready = true;
  expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  expect(metrics).toContain('tw_test_puts_total 3');
  expect(metrics).toContain('tw_process_cpu_seconds_total');
});

test('a taken port is a coded error', async () => {
  const a = await startAdminHttp({ host: '127.0.0.1', port: 0, registry: createMetricsRegistry(), readiness: () => ({ ready: true }) });
  servers.push(a);
  await expect(startAdminHttp({ host: '127.0.0.1', port: a.port, registry: createMetricsRegistry(), readiness: () => ({ ready: true }) })).rejects.toMatchObject({
    code: 'TW_ADMIN_HTTP_LISTEN',
  });
});

test('logger writes one JSON object per line with role and id', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ role: 'storage-node', id: 'sn-1', destination: sink });
  log.info({ fragments: 3 }, 'hello');
  await new Promise((r) => setImmediate(r));
  const obj = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(obj).toMatchObject({ role: 'storage-node', id: 'sn-1', msg: 'hello', fragments: 3, level: 30 });
});
