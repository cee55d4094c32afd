// Lint: typescript-eslint on every project, and nx module boundaries that keep the layering of
// ARCHITECTURE.md section 8: apps wire, libs hold logic, core libs do no I/O.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

/** Node built-ins that do I/O or read the clock: core libraries get these through `components`. */
const ioModules = [
  'fs', 'fs/promises', 'net', 'dgram', 'http', 'https', 'http2', 'child_process', 'cluster',
  'tls', 'dns', 'worker_threads', 'timers', 'timers/promises', 'readline', 'os',
];
const ioImports = ioModules.flatMap((m) => [m, `node:${m}`]);

export default [
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.nx/**', 'bench/results/**', '**/*.d.ts', '**/testdata/**'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts', '**/*.mts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.ts', '**/*.mts', '**/*.js', '**/*.mjs'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:core', 'type:adapter', 'type:contract', 'type:native'] },
            // Multi-process tests may drive an app's own entry points (e.g. twctl's local cluster).
            { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:core', 'type:adapter', 'type:contract', 'type:native', 'type:testing', 'type:app'] },
            { sourceTag: 'type:adapter', onlyDependOnLibsWithTags: ['type:core', 'type:adapter', 'type:contract', 'type:native'] },
            { sourceTag: 'type:native', onlyDependOnLibsWithTags: ['type:core', 'type:contract'] },
            { sourceTag: 'type:core', onlyDependOnLibsWithTags: ['type:core', 'type:contract'], bannedExternalImports: ioImports },
            { sourceTag: 'type:contract', onlyDependOnLibsWithTags: ['type:contract'], bannedExternalImports: ioImports },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:storage', onlyDependOnLibsWithTags: ['scope:shared', 'scope:storage'] },
            { sourceTag: 'scope:coordinator', onlyDependOnLibsWithTags: ['scope:shared', 'scope:coordinator'] },
            { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:shared', 'scope:gateway'] },
          ],
        },
      ],
    },
  },
  {
    // Tests may use testing libraries (compliance suites, simulators) whatever their project's
    // type, and benchmarks may drive anything, apps included; the other boundary checks (no
    // relative imports across projects) still apply.
    files: ['libs/*/test/**', 'apps/*/test/**', 'bench/**'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { enforceBuildableLibDependency: false, allow: [], depConstraints: [{ sourceTag: '*', onlyDependOnLibsWithTags: ['*'] }] }],
    },
  },
  {
    // Tool configs sit outside the project graph's layering.
    files: ['**/vitest.config.ts', 'vitest.shared.ts', 'eslint.config.mjs', 'tools/**'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  {
    // Core and contract libraries: no I/O and no clock in their sources (tests may use both).
    files: ['libs/block-format/src/**', 'libs/erasure/src/**', 'libs/placement/src/**', 'libs/raft/src/**', 'libs/transport/src/**', 'libs/block-map/src/**', 'libs/engine-protocols/src/**', 'libs/fragment-protocol/src/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: ioImports.map((name) => ({ name, message: 'core libraries do no I/O: take it through a components object' })) }],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'core libraries read no clock: time comes in as ticks or a Clock component' },
        { name: 'setInterval', message: 'core libraries read no clock' },
        { name: 'performance', message: 'core libraries read no clock' }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'core libraries read no clock' },
        { object: 'Math', property: 'random', message: 'core libraries take randomness from a seeded component' }],
    },
  },
];
