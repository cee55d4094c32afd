import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'tw-gwapp-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runMain(args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=tw-source', '--import', 'tsx', join(import.meta.dirname, '..', 'src', 'main.ts'), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configFile(name: string, value: unknown): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(value));
  return f;
}

test('--help prints usage and exits 0', () => {
  const r = runMain(['--help']);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('tw-gateway --config FILE');
}, 60_000);

test('bad configs exit 2 with a coded error', () => {
  expect(runMain([])).toMatchObject({ status: 2, stderr: expect.stringContaining('TW_CLI_USAGE') });
  expect(runMain(['--config', configFile('bad.json', { coordinators: [] })])).toMatchObject({ status: 2, stderr: expect.stringContaining('TW_CONFIG_INVALID') });
  expect(runMain(['--config', configFile('nofront.json', { coordinators: ['127.0.0.1:1'] })])).toMatchObject({ status: 2, stderr: expect.stringContaining('TW_GATEWAY_APP_CONFIG') });
}, 120_000);
