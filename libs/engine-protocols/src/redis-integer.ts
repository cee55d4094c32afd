/**
 * Redis's `string2ll`: a strict decimal int64. No sign other than a leading '-', no leading
 * zeros, no spaces, at most 20 bytes. Redis answers every refusal the same way, so callers only
 * need "refused" (null) or the value.
 */

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** The value as a bigint, or null when Redis's string2ll refuses the bytes. */
export function parseRedisInteger(bytes: Uint8Array, start = 0, end = bytes.length): bigint | null {
  const len = end - start;
  if (len <= 0 || len >= 21) return null;
  if (len === 1 && bytes[start] === 0x30) return 0n;
  let p = start;
  let negative = false;
  if (bytes[p] === 0x2d) {
    negative = true;
    p++;
    if (p === end) return null;
  }
  const first = bytes[p]!;
  if (first < 0x31 || first > 0x39) return null;
  // Up to 15 digits fit a double exactly; longer values go through BigInt for the range check.
  let small = 0;
  const digitsStart = p;
  for (; p < end; p++) {
    const c = bytes[p]!;
    if (c < 0x30 || c > 0x39) return null;
    small = small * 10 + (c - 0x30);
  }
  if (end - digitsStart <= 15) return BigInt(negative ? -small : small);
  let big = 0n;
  for (let i = digitsStart; i < end; i++) big = big * 10n + BigInt(bytes[i]! - 0x30);
  if (negative) big = -big;
  if (big > INT64_MAX || big < INT64_MIN) return null;
  return big;
}

/**
 * For protocol headers: the value as a number (exact up to 2^53, sign and order kept beyond), or
 * null when refused. Every bound the parser applies is far below 2^53.
 */
export function parseRedisLength(bytes: Uint8Array, start: number, end: number): number | null {
  const len = end - start;
  // Fast path for the common short positive length.
  if (len > 0 && len <= 15) {
    let p = start;
    const negative = bytes[p] === 0x2d;
    if (negative) p++;
    if (p >= end) return null;
    const first = bytes[p]!;
    if (first === 0x30) return len === 1 ? 0 : null;
    if (first < 0x31 || first > 0x39) return null;
    let v = 0;
    for (; p < end; p++) {
      const c = bytes[p]!;
      if (c < 0x30 || c > 0x39) return null;
      v = v * 10 + (c - 0x30);
    }
    return negative ? -v : v;
  }
  const v = parseRedisInteger(bytes, start, end);
  return v === null ? null : Number(v);
}
