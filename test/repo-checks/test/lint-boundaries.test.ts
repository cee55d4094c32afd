/**
 * Lint refuses imports that cross the layering of ARCHITECTURE.md section 8: a core library
 * importing node:fs or node:net, reading the clock, or importing an adapter.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, test } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const eslint = new ESLint({ cwd: root });

// @nx/enforce-module-boundaries reads the cached project graph; make sure it is current.
beforeAll(() => {
  execFileSync(join(root, 'node_modules', '.bin', 'nx'), ['show', 'projects'], { cwd: root, env: { ...process.env, NX_DAEMON: 'false' }, stdio: 'ignore' });
});

async function ruleIds(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, file) });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

describe('module boundaries', () => {
  test('a core lib importing node:fs or node:net fails lint', async () => {
    expect(await ruleIds('libs/placement/src/probe.ts', "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n")).toContain('no-restricted-imports');
    expect(await ruleIds('libs/erasure/src/probe.ts', "import * as net from 'net';\nexport const n = net;\n")).toContain('no-restricted-imports');
  });

  test('a core lib reading the clock or Math.random fails lint', async () => {
    expect(await ruleIds('libs/block-format/src/probe.ts', 'export const t = Date.now();\n')).toContain('no-restricted-properties');
    expect(await ruleIds('libs/block-format/src/probe.ts', 'export const r = Math.random();\n')).toContain('no-restricted-properties');
    expect(await ruleIds('libs/block-format/src/probe.ts', 'setTimeout(() => 0, 1);\n')).toContain('no-restricted-globals');
  });

  test('a core lib importing an adapter lib fails lint', async () => {
    const messages = await ruleIds('libs/placement/src/probe.ts', "import { x } from '@tw/extent-store';\nexport const e = x;\n");
    expect(messages).toContain('@nx/enforce-module-boundaries');
  });

  test('a lib importing another lib by relative path fails lint', async () => {
    expect(await ruleIds('libs/erasure/src/probe.ts', "import { checksum64 } from '../../block-format/src/checksum.js';\nexport const c = checksum64;\n")).toContain('@nx/enforce-module-boundaries');
  });

  test('allowed imports pass', async () => {
    expect(await ruleIds('libs/erasure/src/probe.ts', "import { checksum64 } from '@tw/block-format';\nexport const c = checksum64;\n")).toEqual([]);
  });
});
