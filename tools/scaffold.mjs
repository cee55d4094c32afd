// Creates the skeleton of a workspace project: node tools/scaffold.mjs libs/NAME "type:core,scope:shared" [dep ...]
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
const [dir, tagList, ...deps] = process.argv.slice(2);
if (!dir || !tagList) { console.error('usage: scaffold.mjs DIR TAGS [DEPS...]'); process.exit(2); }
const name = `@tw/${basename(dir)}`;
mkdirSync(join(dir, 'src'), { recursive: true });
mkdirSync(join(dir, 'test'), { recursive: true });
const pkg = {
  name, version: '0.1.0', private: true, type: 'module',
  exports: { '.': { 'tw-source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' } },
  scripts: { test: 'vitest run' },
  dependencies: Object.fromEntries(deps.map((d) => [`@tw/${d}`, '*'])),
  nx: { tags: tagList.split(',') },
};
if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
const up = dir.split('/').map(() => '..').join('/');
writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
  extends: `${up}/tsconfig.base.json`,
  compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/tsconfig.tsbuildinfo' },
  include: ['src/**/*.ts'],
  references: deps.map((d) => ({ path: `${up}/libs/${d}` })),
}, null, 2) + '\n');
if (!existsSync(join(dir, 'vitest.config.ts'))) writeFileSync(join(dir, 'vitest.config.ts'), `import { defineProject } from 'vitest/config';
import { twVitest } from '${up}/vitest.shared.js';

export default defineProject(twVitest(import.meta.dirname));
`);
if (!existsSync(join(dir, 'src/index.ts'))) writeFileSync(join(dir, 'src/index.ts'), '');
console.log('scaffolded', name);
