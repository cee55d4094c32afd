import { describe, expect, test } from 'vitest';
import { AssertionFailure, TwError, assert, defineErrors, isTwError } from '../src/index.js';

describe('defineErrors', () => {
  const errs = defineErrors('@tw/errors-test', {
    TW_TEST_THING: { description: 'a thing went wrong' },
    TW_TEST_BLIP: { description: 'a blip', retryable: true },
  });

  test('creates coded errors with cause and details', () => {
    const cause = new Error('root');
    const e = errs.create('TW_TEST_THING', 'bad thing', { cause, details: { field: 'x' } });
    expect(e).toBeInstanceOf(TwError);
    expect(e.code).toBe('TW_TEST_THING');
    expect(e.cause).toBe(cause);
    expect(e.retryable).toBe(false);
    expect(e.toJSON()).toEqual({ code: 'TW_TEST_THING', message: 'bad thing', details: { field: 'x' } });
    expect(errs.create('TW_TEST_BLIP', 'x').retryable).toBe(true);
    expect(errs.is(e, 'TW_TEST_THING')).toBe(true);
    expect(errs.is(e, 'TW_TEST_BLIP')).toBe(false);
    expect(isTwError(new Error('x'))).toBe(false);
  });

  test('refuses malformed and duplicate codes', () => {
    expect(() => defineErrors('a', { tw_lower: { description: '' } } as never)).toThrow(AssertionFailure);
    expect(() => defineErrors('@tw/other', { TW_TEST_THING: { description: 'again' } })).toThrow(/declared by both/);
  });

  test('assert throws AssertionFailure', () => {
    expect(() => assert(false, 'x')).toThrow(AssertionFailure);
    expect(() => assert(true, () => 'never')).not.toThrow();
  });
});
