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
      // Generous: the machines are shared and noisy. Timeouts here catch hangs; speed is
      // measured in bench/, never asserted in tests.
      testTimeout: overrides.testTimeoutMs ?? 180_000,
      hookTimeout: 120_000,
      pool: 'forks',
    },
  };
}
