import { TwError } from '@tw/errors';
import { expect, test } from 'vitest';
import { NamespaceTokenCache, type TokenVerdict } from '../src/namespace-tokens.js';

/** A verifier whose answers the test sets: a token per namespace, or an outage. */
function coordinators() {
  const tokens = new Map<string, string>([['team', 'good-token']]);
  const state = { down: false, calls: 0, tokens };
  const verify = async (ns: string, token: string): Promise<TokenVerdict> => {
    state.calls++;
    await Promise.resolve();
    if (state.down) throw new TwError('TW_RPC_UNAVAILABLE', 'coordinators down', { retryable: true });
    return tokens.get(ns) === token ? 'valid' : 'invalid';
  };
  return { state, verify };
}

test('verdicts are cached for ttlMs, then checked again; concurrent checks share one call', async () => {
  const { state, verify } = coordinators();
  let now = 0;
  const cache = new NamespaceTokenCache(verify, { ttlMs: 5000, entriesMax: 100, nowMs: () => now });
  expect(cache.peek('team', 'good-token')).toBeUndefined();
  expect(await Promise.all([cache.allows('team', 'good-token'), cache.allows('team', 'good-token')])).toEqual([true, true]);
  expect(state.calls).toBe(1);
  expect(cache.peek('team', 'good-token')).toBe(true);
  expect(await cache.allows('team', 'bad-token')).toBe(false);
  expect(cache.tokenFor('team')).toBe('good-token');
  expect(cache.namespaceOfToken('good-token')).toBe('team');
  now += 4999;
  expect(await cache.allows('team', 'good-token')).toBe(true);
  expect(state.calls).toBe(2);
  // Rotated on the coordinators: after the TTL the old token stops working.
  state.tokens.set('team', 'new-token');
  now += 2;
  expect(cache.peek('team', 'good-token')).toBeUndefined();
  expect(await cache.allows('team', 'good-token')).toBe(false);
  expect(cache.tokenFor('team')).toBeUndefined();
  expect(await cache.allows('team', 'new-token')).toBe(true);
});

test('an outage keeps tokens already verified working and refuses unknown ones with a retryable code', async () => {
  const { state, verify } = coordinators();
  let now = 0;
  const cache = new NamespaceTokenCache(verify, { ttlMs: 1000, entriesMax: 100, nowMs: () => now });
  expect(await cache.allows('team', 'good-token')).toBe(true);
  expect(await cache.allows('team', 'bad-token')).toBe(false);
  state.down = true;
  now += 60_000;
  expect(await cache.allows('team', 'good-token')).toBe(true);
  await expect(cache.allows('team', 'bad-token')).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_TOKEN_CHECK_FAILED', retryable: true });
  await expect(cache.allows('other', 'never-seen')).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_TOKEN_CHECK_FAILED' });
  state.down = false;
  expect(await cache.allows('team', 'good-token')).toBe(true);
});

test('the cache is bounded: the least recently used verdict goes first', async () => {
  const { state, verify } = coordinators();
  const cache = new NamespaceTokenCache(verify, { ttlMs: 1_000_000, entriesMax: 3, nowMs: () => 0 });
  for (let i = 0; i < 10; i++) await cache.allows('team', `bad-${i}`);
  expect(cache.size).toBe(3);
  const calls = state.calls;
  await cache.allows('team', 'bad-9');
  expect(state.calls).toBe(calls);
  await cache.allows('team', 'bad-0');
  expect(state.calls).toBe(calls + 1);
});

test('an aborted check rejects with a coded error', async () => {
  const cache = new NamespaceTokenCache(() => new Promise<TokenVerdict>(() => undefined), { ttlMs: 1000, entriesMax: 10 });
  await expect(cache.allows('team', 'x', AbortSignal.abort())).rejects.toMatchObject({ code: 'TW_GATEWAY_APP_TOKEN_CHECK_FAILED' });
});
