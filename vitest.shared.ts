import type { UserWorkspaceConfig } from 'vitest/config';

/** Settings every project's vitest config shares: resolve workspace packages to their sources. */
export function twVitest(root: string, overrides: { testTimeoutMs?: number } = {}): UserWorkspaceConfig {
  return {
    root,
    resolve: { conditions: ['tw-source'] },
    ssr: { resolve: { conditions: ['tw-source'] } },
    test: {
      include: ['test/**/*.test.ts'],
      environment: 'node',
      testTimeout: overrides.testTimeoutMs ?? 30_000,
      hookTimeout: 30_000,
      pool: 'forks',
    },
  };
}
