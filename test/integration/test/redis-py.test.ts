/**
 * Issue 6 item 4: Python's redis-py (Debian's python3-redis, a client no one here wrote) replays
 * LMCache's RedisConnector sequence against the gateway's RESP front-end: SET <key>kv_bytes,
 * SET <key>metadata (28 bytes, struct 'iiiiiii'), EXISTS <key>metadata, GET <key>metadata,
 * GET <key>kv_bytes, binary values checked byte for byte by the script (redis-py-lmcache.py).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, expect, test } from 'vitest';
import { startGatewayCluster } from '../src/gateway-cluster.js';
import { killAll, removeTempDirs } from '../src/processes.js';

afterEach(async () => {
  await killAll();
});
afterAll(() => removeTempDirs());

const SCRIPT = join(import.meta.dirname, 'redis-py-lmcache.py');

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Debian's python3 has python3-redis in dist-packages; a pyenv python first on PATH may not. */
async function pythonWithRedis(): Promise<string> {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = await run(py, ['-c', 'import redis'], 20_000);
    if (r.code === 0) return py;
  }
  throw new Error('no python3 with the redis module: apt-get install -y python3-redis (tools/install-system-deps.sh)');
}

test('redis-py replays the LMCache RedisConnector sequence byte for byte', async () => {
  const py = await pythonWithRedis();
  const c = await startGatewayCluster();
  const i = c.respAddress.lastIndexOf(':');
  const r = await run(py, [SCRIPT, c.respAddress.slice(0, i), c.respAddress.slice(i + 1), '14', '20261129'], 120_000);
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ok: boolean; keys: number };
  expect(last).toMatchObject({ ok: true, keys: 14 });
  console.log(`[redis-py] ${r.stdout.trim()}`);
}, 300_000);
