import { describe, expect, test } from 'vitest';
import { fromNative, isal, isalCreate, isalRun, tryLoadIsal } from '../src/binding.js';
import { cauchyMatrix } from './helpers.js';

describe('loading', () => {
  test('a missing addon is TW_ISAL_UNAVAILABLE, reported and not thrown', () => {
    const r = tryLoadIsal(new URL('./no-such-addon.node', import.meta.url));
    expect('error' in r && r.error.code).toBe('TW_ISAL_UNAVAILABLE');
  });
  test('a file that is not an addon is TW_ISAL_UNAVAILABLE', () => {
    const r = tryLoadIsal(new URL(import.meta.url));
    expect('error' in r && r.error.code).toBe('TW_ISAL_UNAVAILABLE');
  });
  test('the addon passes its self-test against its own GF(2^8) arithmetic', () => {
    expect(isal().selfTest()).toBe(true);
  });
  test.each([[2, 1], [4, 2], [10, 4], [32, 32]])('the generator of RS(%i,%i) is the identity over a Cauchy matrix', (k, m) => {
    const b = isal();
    expect([...b.matrix(b.create(k, m))]).toEqual([...cauchyMatrix(k, m)]);
  });
});

describe('native argument checks are TW_ISAL_BAD_ARGUMENT', () => {
  const ctx = isalCreate(4, 2);
  const len = 64;
  const src = (): Buffer[] => [0, 1, 2, 3].map((i) => Buffer.alloc(len, i + 1));
  const out = (n = 2): Buffer[] => Array.from({ length: n }, () => Buffer.alloc(len));
  const bad = { code: 'TW_ISAL_BAD_ARGUMENT' };

  test('create bounds', () => {
    for (const [k, m] of [[0, 2], [33, 1], [4, 0], [4, 33], [1.5, 2], [Number.NaN, 1]] as const) {
      expect(() => isalCreate(k, m)).toThrow(expect.objectContaining(bad));
    }
  });
  test('run arguments', async () => {
    await expect(isalRun({} as never, [0, 1, 2, 3], src(), [4, 5], out())).rejects.toMatchObject(bad); // not a codec
    await expect(isalRun(ctx, [0, 1, 2], src().slice(0, 3), [4, 5], out())).rejects.toMatchObject(bad); // k - 1 sources
    await expect(isalRun(ctx, [0, 0, 2, 3], src(), [4, 5], out())).rejects.toMatchObject(bad); // duplicate source
    await expect(isalRun(ctx, [0, 1, 2, 6], src(), [4, 5], out())).rejects.toMatchObject(bad); // index out of range
    await expect(isalRun(ctx, [0, 1, 2, 3], src(), [4, 4], out())).rejects.toMatchObject(bad); // duplicate output
    await expect(isalRun(ctx, [0, 1, 2, 3], src(), [3], out(1))).rejects.toMatchObject(bad); // output is a source
    await expect(isalRun(ctx, [0, 1, 2, 3], src(), [], [])).rejects.toMatchObject(bad); // nothing to compute
    await expect(isalRun(ctx, [0, 1, 2, 3], src(), [4, 5], out(1))).rejects.toMatchObject(bad); // count mismatch
    await expect(isalRun(ctx, [0, 1, 2, 3], [...src().slice(0, 3), Buffer.alloc(len + 1)], [4, 5], out())).rejects.toMatchObject(bad); // length mismatch
    await expect(isalRun(ctx, [0, 1, 2, 3], src(), [4, 5], [Buffer.alloc(len), Buffer.alloc(len - 8)])).rejects.toMatchObject(bad);
    await expect(isalRun(ctx, [0, 1, 2, 3], src().map(() => Buffer.alloc(0)), [4, 5], out())).rejects.toMatchObject(bad); // empty
    await expect(isalRun(ctx, [0, 1, 2, 3], [...src().slice(0, 3), new Float32Array(len / 4) as unknown as Uint8Array], [4, 5], out())).rejects.toMatchObject(bad);
    const shared = src();
    await expect(isalRun(ctx, [0, 1, 2, 3], shared, [4, 5], [shared[0]!, Buffer.alloc(len)])).rejects.toMatchObject(bad); // output aliases a source
    const one = Buffer.alloc(len * 2);
    await expect(isalRun(ctx, [0, 1, 2, 3], src(), [4, 5], [one.subarray(0, len), one.subarray(8, len + 8)])).rejects.toMatchObject(bad); // outputs overlap
    expect(() => isal().run(ctx, [0, 1, 2, 3], src(), [4, 5], out(), 'not a function' as never)).toThrow(expect.objectContaining({ code: 'ISAL_BAD_ARGUMENT' }));
  });
  test('native codes map to TwErrors; unknown ones to TW_ISAL_CODEC', () => {
    expect(fromNative(Object.assign(new Error('x'), { code: 'ISAL_NO_MEMORY' }), 'op')).toMatchObject({ code: 'TW_ISAL_NO_MEMORY', retryable: true });
    expect(fromNative(Object.assign(new Error('x'), { code: 'ISAL_SINGULAR' }), 'op')).toMatchObject({ code: 'TW_ISAL_CODEC', details: { nativeCode: 'ISAL_SINGULAR' } });
    expect(fromNative(new Error('x'), 'op')).toMatchObject({ code: 'TW_ISAL_CODEC', details: { nativeCode: null } });
    expect(fromNative('boom', 'op')).toMatchObject({ code: 'TW_ISAL_CODEC' });
  });
  test('a valid run computes what it was asked', async () => {
    const data = src();
    const parity = out();
    await isalRun(ctx, [0, 1, 2, 3], data, [4, 5], parity);
    const rebuilt = out(1);
    await isalRun(ctx, [1, 2, 4, 5], [data[1]!, data[2]!, parity[0]!, parity[1]!], [0], rebuilt);
    expect(rebuilt[0]!.equals(data[0]!)).toBe(true);
  });
});
