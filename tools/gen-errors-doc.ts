// Rewrites docs/errors.md from every package's src/errors.ts: `npm run docs:errors`.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCatalogues, renderErrorsDoc } from '@tw/repo-checks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entries = await loadCatalogues(root);
writeFileSync(join(root, 'docs', 'errors.md'), renderErrorsDoc(entries));
console.log(`docs/errors.md: ${entries.length} codes`);
