/** twctl as its users run it: help, usage errors, and the local cluster's port check. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { expect, test } from 'vitest';

const main = join(import.meta.dirname, '..', 'src', 'main.ts');

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--conditions=tw-source', '--import', 'tsx', main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('--help lists the commands and exits 0', async () => {
  const r = await run(['--help']);
  expect(r.code).toBe(0);
  expect(r.out).toContain('local');
  expect(r.out).toContain('cluster-map');
});

test('usage errors exit 2 with a coded message', async () => {
  const unknown = await run(['frobnicate']);
  expect(unknown.code).toBe(2);
  expect(unknown.err).toContain('TW_CLI_USAGE');
  const badPort = await run(['local', '--base-port', 'eighty']);
  expect(badPort.code).toBe(2);
  expect(badPort.err).toContain('--base-port');
});

test('local refuses to start on a port that is taken, before starting anything', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'tw-twctl-'));
  try {
    // The blocker holds base+1, the first coordinator's port.
    const r = await run(['local', '--base-port', String(port - 1), '--data-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('TW_LOCAL_PORT_IN_USE');
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
