import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError, Reader, Writer } from '../src/bytes.js';

describe('Writer / Reader strings', () => {
  it('round-trip any string that fits, with the bytes of UTF-8 (ASCII fast path included)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 60 })), (s) => {
        const utf8 = Buffer.from(s, 'utf8');
        // Well-formed UTF-16 only (no lone surrogates): those are what UTF-8 round-trips.
        fc.pre(utf8.length <= 255 && utf8.toString('utf8') === s);
        const bytes = new Writer(4).str8(s).u8(7).finish();
        expect(Buffer.from(bytes)).toEqual(Buffer.concat([Buffer.of(utf8.length), utf8, Buffer.of(7)]));
        const r = new Reader(bytes);
        expect(r.str8()).toBe(s);
        expect(r.u8()).toBe(7);
        r.end();
      }),
      { seed: 0x5178, numRuns: 500 },
    );
  });

  it('refuses invalid UTF-8', () => {
    expect(() => new Reader(Uint8Array.of(2, 0xc3, 0x28)).str8()).toThrow(DecodeError);
    expect(() => new Reader(Uint8Array.of(1, 0x80)).str8()).toThrow(DecodeError);
  });
});
