/**
 * docs/errors.md is generated from the error catalogues (`src/errors.ts` of every lib and app);
 * `npm run docs:errors` rewrites it and a test fails when the two drift apart.
 */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ErrorCatalogue, type ErrorSpec } from '@tw/errors';

export interface CatalogueEntry {
  owner: string;
  code: string;
  spec: ErrorSpec;
}

/** Every `src/errors.ts` under libs/* and apps/*. */
export function errorCatalogueFiles(repoRoot: string): string[] {
  const files: string[] = [];
  for (const group of ['libs', 'apps']) {
    const dir = join(repoRoot, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const f = join(dir, name, 'src', 'errors.ts');
      if (existsSync(f)) files.push(f);
    }
  }
  return files;
}

/** Imports every catalogue file and collects the catalogues it exports. */
export async function loadCatalogues(repoRoot: string): Promise<CatalogueEntry[]> {
  const entries: CatalogueEntry[] = [];
  for (const file of errorCatalogueFiles(repoRoot)) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (isCatalogue(value)) {
        for (const [code, spec] of Object.entries(value.specs) as [string, ErrorSpec][]) entries.push({ owner: value.owner, code, spec });
      }
    }
  }
  return entries.sort((a, b) => (a.owner === b.owner ? a.code.localeCompare(b.code) : a.owner.localeCompare(b.owner)));
}

function isCatalogue(v: unknown): v is ErrorCatalogue<string> {
  return typeof v === 'object' && v !== null && 'owner' in v && 'specs' in v && typeof (v as { create?: unknown }).create === 'function';
}

/** The text of docs/errors.md for these entries. */
export function renderErrorsDoc(entries: readonly CatalogueEntry[]): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from every package\'s src/errors.ts by `npm run docs:errors`; a test keeps this file in sync. Do not edit by hand. -->',
    '',
    'Every operating error (bad input, disk, network) carries a stable `code`; callers branch on the',
    'code, never on the message. Retryable errors may succeed when the same request is sent again',
    'later (after a backoff); the others will fail the same way until something changes.',
    '',
  ];
  const owners = [...new Set(entries.map((e) => e.owner))];
  for (const owner of owners) {
    lines.push(`## ${owner}`, '', '| code | retryable | meaning |', '| --- | --- | --- |');
    for (const e of entries.filter((x) => x.owner === owner)) {
      lines.push(`| \`${e.code}\` | ${e.spec.retryable ? 'yes' : 'no'} | ${e.spec.description.replace(/\|/g, '\\|')} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
