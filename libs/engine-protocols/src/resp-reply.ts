import { assert } from '@tw/errors';

/** A value handed out in pieces (views of received chunks): written back-to-back, never joined. */
export type RespBulkValue = Buffer | readonly Buffer[];

/** A RESP2 reply as a tree; {@link encodeReply} turns it into Redis's exact bytes. */
export type RespReply =
  | { readonly kind: 'simple'; readonly text: string }
  | { readonly kind: 'error'; readonly text: string }
  | { readonly kind: 'integer'; readonly value: number | bigint }
  | { readonly kind: 'bulk'; readonly value: RespBulkValue | null }
  | { readonly kind: 'array'; readonly items: readonly RespReply[] | null };

const CRLF = Buffer.from('\r\n', 'latin1');

/** `+OK\r\n` */
export const RESP_OK = Buffer.from('+OK\r\n', 'latin1');
/** `+PONG\r\n` */
export const RESP_PONG = Buffer.from('+PONG\r\n', 'latin1');
/** `$-1\r\n`: GET of a missing key, a null element of MGET. */
export const RESP_NULL_BULK = Buffer.from('$-1\r\n', 'latin1');
/** `*-1\r\n`: the null array. */
export const RESP_NULL_ARRAY = Buffer.from('*-1\r\n', 'latin1');
/** `*0\r\n` */
export const RESP_EMPTY_ARRAY = Buffer.from('*0\r\n', 'latin1');
/** `-NOAUTH Authentication required.\r\n` (Redis's shared.noautherr). */
export const RESP_NOAUTH = Buffer.from('-NOAUTH Authentication required.\r\n', 'latin1');
/** `-ERR syntax error\r\n` (Redis's shared.syntaxerr). */
export const RESP_SYNTAX_ERROR = Buffer.from('-ERR syntax error\r\n', 'latin1');
/** Redis's shared.wrongtypeerr. */
export const RESP_WRONGTYPE = Buffer.from('-WRONGTYPE Operation against a key holding the wrong kind of value\r\n', 'latin1');
/** `-ERR value is not an integer or out of range\r\n` (Redis's shared.outofrangeerr wording). */
export const RESP_NOT_INTEGER = Buffer.from('-ERR value is not an integer or out of range\r\n', 'latin1');
/** `-WRONGPASS ...`: AUTH with a bad token or user. */
export const RESP_WRONGPASS = Buffer.from('-WRONGPASS invalid username-password pair or user is disabled.\r\n', 'latin1');

const INTEGER_CACHE: Buffer[] = Array.from({ length: 64 }, (_, i) => Buffer.from(`:${i}\r\n`, 'latin1'));

/**
 * `+text\r\n`. Strings are byte strings: each char of `text` is one byte (latin1).
 * A simple string cannot hold '\r' or '\n' (an assertion: callers pass constants).
 */
export function encodeSimpleString(text: string): Buffer {
  assert(!/[\r\n]/.test(text), 'a RESP simple string cannot contain CR or LF');
  return Buffer.from(`+${text}\r\n`, 'latin1');
}

/**
 * An error reply the way redis-server's addReplyError words it: a message that starts with '-'
 * carries its own code (`-WRONGPASS ...`), any other gets `-ERR ` in front; CR and LF inside
 * become spaces (Redis does the same for messages that quote client bytes). Latin1: one char,
 * one byte, so client bytes quoted in a message come back unchanged.
 */
export function encodeError(message: string): Buffer {
  const clean = message.replace(/[\r\n]/g, ' ');
  return Buffer.from(clean.startsWith('-') ? `${clean}\r\n` : `-ERR ${clean}\r\n`, 'latin1');
}

/** `:n\r\n` for an int64. */
export function encodeInteger(value: number | bigint): Buffer {
  if (typeof value === 'number') {
    assert(Number.isSafeInteger(value), () => `RESP integer ${value} is not a safe integer`);
    if (value >= 0 && value < INTEGER_CACHE.length) return INTEGER_CACHE[value]!;
  }
  return Buffer.from(`:${value}\r\n`, 'latin1');
}

/** `$len\r\n` ... `\r\n`, or `$-1\r\n` for null; the value's pieces are not copied. */
export function encodeBulkString(value: RespBulkValue | string | null, out: Buffer[] = []): Buffer[] {
  if (value === null) {
    out.push(RESP_NULL_BULK);
    return out;
  }
  if (typeof value === 'string') value = Buffer.from(value, 'latin1');
  if (Buffer.isBuffer(value)) {
    if (value.length <= 1024) {
      // Small values: one buffer, so a pipeline of small replies is not thousands of pieces.
      const head = `$${value.length}\r\n`;
      const b = Buffer.allocUnsafe(head.length + value.length + 2);
      b.write(head, 0, 'latin1');
      value.copy(b, head.length);
      b[b.length - 2] = 0x0d;
      b[b.length - 1] = 0x0a;
      out.push(b);
      return out;
    }
    out.push(Buffer.from(`$${value.length}\r\n`, 'latin1'), value, CRLF);
    return out;
  }
  let len = 0;
  for (const piece of value) len += piece.length;
  out.push(Buffer.from(`$${len}\r\n`, 'latin1'));
  for (const piece of value) if (piece.length > 0) out.push(piece);
  out.push(CRLF);
  return out;
}

/** `*n\r\n` header of an array (`*-1\r\n` for null). */
export function encodeArrayHeader(count: number | null): Buffer {
  if (count === null) return RESP_NULL_ARRAY;
  assert(Number.isSafeInteger(count) && count >= 0, 'RESP array length must be a count');
  return count === 0 ? RESP_EMPTY_ARRAY : Buffer.from(`*${count}\r\n`, 'latin1');
}

/** Any reply tree, as pieces to write in order. */
export function encodeReply(reply: RespReply, out: Buffer[] = []): Buffer[] {
  switch (reply.kind) {
    case 'simple':
      out.push(encodeSimpleString(reply.text));
      return out;
    case 'error':
      out.push(encodeError(reply.text));
      return out;
    case 'integer':
      out.push(encodeInteger(reply.value));
      return out;
    case 'bulk':
      return encodeBulkString(reply.value, out);
    case 'array':
      out.push(encodeArrayHeader(reply.items === null ? null : reply.items.length));
      if (reply.items !== null) for (const item of reply.items) encodeReply(item, out);
      return out;
  }
}

/** A RESP2 request as a client sends it (multibulk), as pieces; arguments are not copied. */
export function encodeCommand(args: readonly (string | Buffer)[], out: Buffer[] = []): Buffer[] {
  assert(args.length > 0, 'a RESP command has at least its name');
  out.push(Buffer.from(`*${args.length}\r\n`, 'latin1'));
  for (const arg of args) encodeBulkString(typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg, out);
  return out;
}
