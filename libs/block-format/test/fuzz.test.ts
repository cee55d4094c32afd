/**
 * Decoders of untrusted bytes answer malformed input with a coded TwError, never a TypeError or
 * RangeError, never an out-of-bounds read. Inputs: random bytes, and mutations of valid headers
 * (byte flips, truncation, extension), with and without the header checksum recomputed so that the
 * mutations reach the field checks behind it.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TwError } from '@tw/errors';
import {
  blockFormatErrors,
  checksum64,
  decodeBlockHeader,
  decodeFragmentHeader,
  encodeBlockHeader,
  encodeFragmentHeader,
  parseLmcacheKey,
} from '../src/index.js';
import { SEED, blockHeaderArb, fragmentHeaderArb } from './arbitraries.js';

const codes = new Set(Object.keys(blockFormatErrors.specs));

/** Runs `decode`, and if it throws, requires a TwError of this package. */
function decodesOrCodedError(decode: () => unknown): unknown {
  try {
    return decode();
  } catch (err) {
    if (!(err instanceof TwError) || !codes.has(err.code)) {
      throw new Error(`decoder threw a non-coded error: ${String(err)}`, { cause: err });
    }
    return err;
  }
}

interface Mutation {
  at: number;
  xor: number;
}
const mutationsArb = fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 6 });

function mutate(bytes: Uint8Array, muts: Mutation[], resealAt: number | null): Buffer {
  const out = Buffer.from(bytes);
  for (const m of muts) out[m.at % out.length]! ^= m.xor;
  if (resealAt !== null && resealAt + 8 <= out.length) out.writeBigUInt64LE(checksum64(out.subarray(0, resealAt)), resealAt);
  return out;
}

const SLICE_CASES = fc.oneof(fc.constant('whole'), fc.constant('truncate'), fc.constant('extend'));
function reshape(bytes: Buffer, how: string, n: number): Buffer {
  if (how === 'truncate') return bytes.subarray(0, n % (bytes.length + 1));
  if (how === 'extend') return Buffer.concat([bytes, Buffer.alloc(n % 64, 0xee)]);
  return bytes;
}

describe('fuzz: decoders answer garbage with coded errors', () => {
  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        decodesOrCodedError(() => decodeBlockHeader(bytes));
        decodesOrCodedError(() => decodeFragmentHeader(bytes));
        // Random bytes behind a valid magic reach deeper.
        decodesOrCodedError(() => decodeBlockHeader(Buffer.concat([Buffer.from('TWBK\x01\x00'), bytes])));
        decodesOrCodedError(() => decodeFragmentHeader(Buffer.concat([Buffer.from('TWFG\x01\x00'), bytes])));
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  test('mutated block headers: coded error, or a header that re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(blockHeaderArb, mutationsArb, fc.boolean(), SLICE_CASES, fc.nat(), (h, muts, reseal, how, n) => {
        const good = encodeBlockHeader(h);
        const bad = reshape(mutate(good, muts, reseal ? good.length - 8 : null), how, n);
        const out = decodesOrCodedError(() => decodeBlockHeader(bad));
        if (!(out instanceof TwError)) {
          const { header, headerLength } = out as ReturnType<typeof decodeBlockHeader>;
          // Accepted bytes must be exactly what we would have written for that header.
          expect(encodeBlockHeader(header)).toEqual(bad.subarray(0, headerLength));
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  test('mutated fragment headers: coded error, or a header that re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fragmentHeaderArb, mutationsArb, fc.boolean(), SLICE_CASES, fc.nat(), (h, muts, reseal, how, n) => {
        const good = Buffer.from(encodeFragmentHeader(h));
        const bad = reshape(mutate(good, muts, reseal ? 56 : null), how, n);
        const out = decodesOrCodedError(() => decodeFragmentHeader(bad));
        if (!(out instanceof TwError)) {
          expect(Buffer.from(encodeFragmentHeader(out as ReturnType<typeof decodeFragmentHeader>))).toEqual(bad.subarray(0, 64));
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  test('LMCache key parser', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdef') }), fc.string({ maxLength: 10 }), fc.nat().map(String)), { maxLength: 8 }).map((p) => p.join('@'))), (s) => {
        decodesOrCodedError(() => parseLmcacheKey(s));
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});
