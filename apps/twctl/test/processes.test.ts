import { expect, test } from 'vitest';
import { GLIBC_TUNABLES, NODE_FLAGS, appEnv } from '../src/processes.js';

test('coordinators start with malloc asking for huge pages, after any tunables the caller set', () => {
  expect(GLIBC_TUNABLES['coordinator']).toBe('glibc.malloc.hugetlb=1');
  expect(NODE_FLAGS['coordinator']).toContain('--max-semi-space-size=64');
  expect(appEnv('coordinator', { PATH: '/bin' })).toEqual({ PATH: '/bin', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' });
  expect(appEnv('coordinator', { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })['GLIBC_TUNABLES']).toBe('glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
  // Other apps keep the caller's environment as it is.
  const base = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' };
  expect(appEnv('storage-node', base)).toBe(base);
});
