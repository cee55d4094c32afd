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

  it('reads back every short string exactly, across the interning of decoded strings (hash collisions and its bound included)', () => {
    // 300,000 distinct ids: the interning table (4,096) empties many times over. Each is read
    // twice, far apart.
    const ids = Array.from({ length: 300_000 }, (_, i) => `sn-${i.toString(36)}`);
    const w = new Writer(1 << 20);
    for (const id of ids) w.str8(id);
    for (const id of ids) w.str8(id);
    const r = new Reader(w.finish());
    for (let pass = 0; pass < 2; pass++) for (const id of ids) if (r.str8() !== id) expect.fail(`read back wrongly: ${id}`);
    r.end();
    // Two strings whose interning hashes collide (found by a search): each must still read as itself.
    const pair = ['yrohgzob', 'sdwjkrgx'];
    const rr = new Reader(new Writer().str8(pair[0]!).str8(pair[1]!).str8(pair[0]!).finish());
    expect([rr.str8(), rr.str8(), rr.str8()]).toEqual([pair[0], pair[1], pair[0]]);
  });

  it('refuses invalid UTF-8', () => {
    expect(() => new Reader(Uint8Array.of(2, 0xc3, 0x28)).str8()).toThrow(DecodeError);
    expect(() => new Reader(Uint8Array.of(1, 0x80)).str8()).toThrow(DecodeError);
  });
});
