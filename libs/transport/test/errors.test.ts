import { describe, expect, it } from 'vitest';
import { TwError } from '@tw/errors';
import { HEADER_BYTES_MAX, PAYLOAD_BYTES_MAX_CAP, PAYLOAD_BYTES_MAX_DEFAULT, transportErrors, WIRE_PREFIX_BYTES } from '../src/index.js';

describe('transport contract', () => {
  it('declares only TW_TRANSPORT_ codes, each with a description', () => {
    const codes = Object.keys(transportErrors.specs);
    expect(codes.length).toBeGreaterThan(5);
    for (const code of codes) {
      expect(code).toMatch(/^TW_TRANSPORT_[A-Z_]+$/);
      expect(transportErrors.specs[code as keyof typeof transportErrors.specs].description.length).toBeGreaterThan(10);
    }
  });

  it('creates coded errors with the declared retryability', () => {
    const e = transportErrors.create('TW_TRANSPORT_CONNECTION_CLOSED', 'gone');
    expect(e).toBeInstanceOf(TwError);
    expect(e.retryable).toBe(true);
    expect(transportErrors.is(e, 'TW_TRANSPORT_CONNECTION_CLOSED')).toBe(true);
    expect(transportErrors.create('TW_TRANSPORT_ABORTED', 'x').retryable).toBe(false);
  });

  it('keeps limits consistent with the u32 wire lengths', () => {
    expect(PAYLOAD_BYTES_MAX_DEFAULT).toBeLessThanOrEqual(PAYLOAD_BYTES_MAX_CAP);
    expect(PAYLOAD_BYTES_MAX_CAP).toBeLessThan(2 ** 32);
    expect(HEADER_BYTES_MAX).toBeLessThan(2 ** 32);
    expect(WIRE_PREFIX_BYTES).toBe(16);
  });
});
