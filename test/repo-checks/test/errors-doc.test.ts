import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { errorCatalogueFiles, loadCatalogues, renderErrorsDoc } from '../src/index.js';

const root = join(import.meta.dirname, '..', '..', '..');

test('docs/errors.md lists exactly the codes the packages declare (run `npm run docs:errors` to fix)', async () => {
  const files = errorCatalogueFiles(root);
  expect(files.length).toBeGreaterThan(2);
  const entries = await loadCatalogues(root);
  const codes = entries.map((e) => e.code);
  expect(new Set(codes).size).toBe(codes.length);
  const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `(TW_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
  expect(documented.filter((c) => !codes.includes(c!))).toEqual([]);
  expect(codes.filter((c) => !documented.includes(c))).toEqual([]);
  expect(doc).toBe(renderErrorsDoc(entries));
});
