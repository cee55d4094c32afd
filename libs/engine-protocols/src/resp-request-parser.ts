import type { TwError } from '@tw/errors';
import { engineProtocolErrors } from './errors.js';
import { splitInlineArgs } from './inline-args.js';
import {
  RESP_ARGS_MAX,
  RESP_BULK_BYTES_MAX,
  RESP_COMMAND_BYTES_MAX,
  RESP_LINE_BYTES_MAX,
  RESP_UNAUTHENTICATED_ARGS_MAX,
  RESP_UNAUTHENTICATED_BULK_BYTES_MAX,
} from './limits.js';
import { parseRedisLength } from './redis-integer.js';

/** One client command: its arguments, the name first, as redis-server would see them. */
export type RespCommand = Buffer[];

export interface RespRequestParserOptions {
  /** Largest bulk string; at most {@link RESP_BULK_BYTES_MAX} (Redis's `proto-max-bulk-len`). */
  readonly bulkBytesMax?: number;
  /** Most arguments of one command; at most {@link RESP_ARGS_MAX}. */
  readonly argsMax?: number;
  /** Most argument bytes of one command; at most {@link RESP_COMMAND_BYTES_MAX}. */
  readonly commandBytesMax?: number;
  /** Start with the smaller pre-AUTH bounds on (see {@link RespRequestParser.authRequired}). */
  readonly authRequired?: boolean;
}

const MODE_START = 0;
const MODE_MULTIBULK_LINE = 1;
const MODE_INLINE_LINE = 2;
const MODE_BULK_LINE = 3;
const MODE_BULK_DATA = 4;
const MODE_BULK_TRAILER = 5;

/** Pieces of a bulk string shorter than this are gathered into a staging buffer, not kept as views. */
const SMALL_PIECE_BYTES = 16 * 1024;
/** Size of the staging buffers that gather small pieces of one bulk string. */
const STAGING_BYTES = 64 * 1024;

const EMPTY = Buffer.alloc(0);
const INT_MAX = 2147483647;

/**
 * Incremental RESP2 request parser with redis-server 7's framing rules, quirks included: a
 * request starting with '*' is multibulk, anything else is an inline command; `*0` and negative
 * counts are skipped; the two bytes after a bulk string are skipped unchecked; a header line ends
 * at '\r' plus one byte, an inline line at '\n'; a NUL before the line end hides the end (Redis
 * scans with strchr). Every refusal is a TwError (TW_RESP_PROTOCOL or TW_RESP_LIMIT) whose
 * `details.replyText` is the text Redis answers (see {@link respErrorReply}); after it the
 * connection must be closed, and the parser keeps throwing it.
 *
 * Memory: the parser holds the chunks pushed and not yet parsed, one partial line (at most 64 KiB,
 * copied only when a line spans chunks), and the arguments of the command in progress. A bulk
 * string is kept as views of the pushed chunks (small pieces gathered in 64 KiB steps) and copied
 * once into a buffer of its length when its last byte arrives: nothing is allocated for bytes a
 * header announces and the client has not sent. Back-pressure is the caller's: stop reading the
 * socket while {@link bufferedBytes} is high.
 *
 * Usage: `push(chunk)`, then call `next()` until it returns null. With pre-AUTH bounds on, call
 * `next()` for a command only after the previous one was dispatched and `authRequired` updated,
 * as Redis executes each command before it parses the next.
 */
export class RespRequestParser {
  /**
   * When true, commands of more than 10 arguments and bulk strings over 16 KiB are refused with
   * Redis's "unauthenticated" protocol errors. Set it while the connection has not authenticated
   * and its namespace needs a token.
   */
  authRequired: boolean;

  private readonly bulkBytesMax: number;
  private readonly argsMax: number;
  private readonly commandBytesMax: number;

  private queue: Buffer[] = [];
  private qi = 0;
  private off = 0;
  private queued = 0;

  private mode = MODE_START;
  private failure: TwError | null = null;

  // Line in progress.
  private lineBuf: Buffer | null = null;
  private lineCopied = 0;
  private lineView: Buffer | null = null;
  private lineTotal = 0;
  private lineSawTerminator = false;
  private lineDead = false;

  // Command in progress.
  private args: Buffer[] = [];
  private argsLeft = 0;
  private commandBytes = 0;

  // Bulk string in progress.
  private bulkLen = 0;
  private bulkGot = 0;
  private bulkParts: Buffer[] = [];
  private staging: Buffer | null = null;
  private stagingUsed = 0;
  private trailerLeft = 0;

  constructor(options: RespRequestParserOptions = {}) {
    this.bulkBytesMax = Math.min(options.bulkBytesMax ?? RESP_BULK_BYTES_MAX, RESP_BULK_BYTES_MAX);
    this.argsMax = Math.min(options.argsMax ?? RESP_ARGS_MAX, RESP_ARGS_MAX);
    this.commandBytesMax = Math.min(options.commandBytesMax ?? RESP_COMMAND_BYTES_MAX, RESP_COMMAND_BYTES_MAX);
    this.authRequired = options.authRequired ?? false;
  }

  /** Bytes pushed and not yet parsed (the caller's back-pressure signal). */
  get bufferedBytes(): number {
    return this.queued;
  }

  /** True when no partial command is held: the stream is at a command boundary. */
  get idle(): boolean {
    return this.mode === MODE_START && this.queued === 0;
  }

  /** Adds bytes read from the connection. The parser keeps views of `chunk`: do not reuse it. */
  push(chunk: Buffer): void {
    if (this.failure !== null) return;
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
  }

  /** The next complete command, or null until more bytes arrive. Throws the protocol error. */
  next(): RespCommand | null {
    if (this.failure !== null) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      if (isOwnError(err)) {
        this.failure = err;
        this.release();
      }
      throw err;
    }
  }

  /** Convenience: pushes a chunk and returns every command it completes (throws as `next`). */
  feed(chunk: Buffer): RespCommand[] {
    this.push(chunk);
    const out: RespCommand[] = [];
    for (let cmd = this.next(); cmd !== null; cmd = this.next()) out.push(cmd);
    return out;
  }

  private step(): RespCommand | null {
    for (;;) {
      switch (this.mode) {
        case MODE_START: {
          if (this.qi >= this.queue.length) return null;
          const first = this.queue[this.qi]![this.off];
          this.mode = first === 0x2a ? MODE_MULTIBULK_LINE : MODE_INLINE_LINE;
          this.resetLine();
          continue;
        }
        case MODE_MULTIBULK_LINE: {
          const line = this.readLine(0x0d, 1, 'Protocol error: too big mbulk count string');
          if (line === null) return null;
          const n = parseRedisLength(line, 1, line.length);
          if (n === null || n > INT_MAX) throw protocol('Protocol error: invalid multibulk length');
          if (n > this.argsMax) throw limit('Protocol error: invalid multibulk length', `${n} arguments, at most ${this.argsMax}`);
          if (n > RESP_UNAUTHENTICATED_ARGS_MAX && this.authRequired) {
            throw limit('Protocol error: unauthenticated multibulk length', `${n} arguments before AUTH`);
          }
          if (n <= 0) {
            this.mode = MODE_START;
            continue;
          }
          this.args = [];
          this.argsLeft = n;
          this.commandBytes = 0;
          this.mode = MODE_BULK_LINE;
          this.resetLine();
          continue;
        }
        case MODE_BULK_LINE: {
          const line = this.readLine(0x0d, 1, 'Protocol error: too big bulk count string');
          if (line === null) return null;
          // An empty line means Redis looked at the '\r' itself; its reply maps '\r' to a space.
          const first = line.length === 0 ? 0x0d : line[0]!;
          if (first !== 0x24) {
            const shown = first === 0x0d || first === 0x0a ? ' ' : String.fromCharCode(first);
            throw protocol(`Protocol error: expected '$', got '${shown}'`);
          }
          const n = parseRedisLength(line, 1, line.length);
          if (n === null || n < 0 || n > RESP_BULK_BYTES_MAX) throw protocol('Protocol error: invalid bulk length');
          if (n > this.bulkBytesMax) throw limit('Protocol error: invalid bulk length', `bulk string of ${n} bytes, at most ${this.bulkBytesMax}`);
          if (n > RESP_UNAUTHENTICATED_BULK_BYTES_MAX && this.authRequired) {
            throw limit('Protocol error: unauthenticated bulk length', `bulk string of ${n} bytes before AUTH`);
          }
          if (this.commandBytes + n > this.commandBytesMax) {
            throw limit(null, `command of more than ${this.commandBytesMax} bytes`);
          }
          this.commandBytes += n;
          this.bulkLen = n;
          this.bulkGot = 0;
          this.bulkParts = [];
          this.staging = null;
          this.stagingUsed = 0;
          this.mode = MODE_BULK_DATA;
          continue;
        }
        case MODE_BULK_DATA: {
          if (!this.readBulk()) return null;
          this.args.push(this.assembleBulk());
          this.trailerLeft = 2;
          this.mode = MODE_BULK_TRAILER;
          continue;
        }
        case MODE_BULK_TRAILER: {
          while (this.trailerLeft > 0) {
            if (this.qi >= this.queue.length) return null;
            const c = this.queue[this.qi]!;
            const take = Math.min(this.trailerLeft, c.length - this.off);
            this.trailerLeft -= take;
            this.consume(take);
          }
          this.argsLeft--;
          if (this.argsLeft > 0) {
            this.mode = MODE_BULK_LINE;
            this.resetLine();
            continue;
          }
          const command = this.args;
          this.args = [];
          this.commandBytes = 0;
          this.bulkLen = 0;
          this.bulkGot = 0;
          this.mode = MODE_START;
          return command;
        }
        case MODE_INLINE_LINE: {
          const raw = this.readLine(0x0a, 0, 'Protocol error: too big inline request');
          if (raw === null) return null;
          const line = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, raw.length - 1) : raw;
          const args = splitInlineArgs(line);
          if (args === null) throw protocol('Protocol error: unbalanced quotes in request');
          this.mode = MODE_START;
          if (args.length === 0) continue;
          return args;
        }
        default:
          throw new Error(`unreachable parser mode ${this.mode}`);
      }
    }
  }

  private resetLine(): void {
    this.lineView = null;
    this.lineCopied = 0;
    this.lineTotal = 0;
    this.lineSawTerminator = false;
    this.lineDead = false;
  }

  /**
   * Reads one line ending at `terminator` plus `extra` more bytes (Redis's header lines need one
   * byte after '\r', whatever it is). Returns the bytes before the terminator, or null for more.
   * The bound is Redis's as if bytes came one at a time: the line is refused once more than 64 KiB
   * sit in the buffer without a complete terminator.
   */
  private readLine(terminator: number, extra: 0 | 1, tooBig: string): Buffer | null {
    while (this.qi < this.queue.length) {
      const c = this.queue[this.qi]!;
      const from = this.off;
      if (this.lineSawTerminator) {
        this.consume(1);
        return this.finishLine();
      }
      if (this.lineDead) {
        const n = c.length - from;
        this.lineTotal += n;
        this.consume(n);
        if (this.lineTotal > RESP_LINE_BYTES_MAX) throw limit(tooBig, 'line without an end');
        continue;
      }
      const t = c.indexOf(terminator, from);
      const scanEnd = t === -1 ? c.length : t;
      if (scanEnd > from && c.subarray(from, scanEnd).indexOf(0) !== -1) {
        // Redis's strchr stops at the NUL: this line never ends for it.
        this.lineDead = true;
        continue;
      }
      if (t === -1) {
        const n = c.length - from;
        if (this.lineTotal + n > RESP_LINE_BYTES_MAX) throw limit(tooBig, 'line over 64 KiB');
        this.appendLine(c, from, c.length);
        this.consume(n);
        continue;
      }
      const index = this.lineTotal + (t - from);
      if (index + 1 + extra > RESP_LINE_BYTES_MAX + 1) throw limit(tooBig, 'line over 64 KiB');
      this.appendLine(c, from, t);
      this.consume(t - from + 1);
      if (extra === 0) return this.finishLine();
      this.lineSawTerminator = true;
    }
    return null;
  }

  private appendLine(c: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.lineTotal === 0 && this.lineView === null) {
      this.lineView = c.subarray(from, to);
    } else {
      // The line spans chunks: gather it in the parser's one line buffer (at most 64 KiB).
      if (this.lineBuf === null) this.lineBuf = Buffer.allocUnsafe(RESP_LINE_BYTES_MAX + 1);
      if (this.lineView !== null) {
        this.lineView.copy(this.lineBuf, 0);
        this.lineCopied = this.lineView.length;
        this.lineView = null;
      }
      c.copy(this.lineBuf, this.lineCopied, from, to);
      this.lineCopied += n;
    }
    this.lineTotal += n;
  }

  private finishLine(): Buffer {
    // A view of the line buffer is fine: the caller is done with a line before the next is read.
    const line = this.lineView ?? (this.lineBuf === null ? EMPTY : this.lineBuf.subarray(0, this.lineCopied));
    this.lineView = null;
    this.lineCopied = 0;
    this.lineTotal = 0;
    this.lineSawTerminator = false;
    return line;
  }

  private readBulk(): boolean {
    while (this.bulkGot < this.bulkLen) {
      if (this.qi >= this.queue.length) return false;
      const c = this.queue[this.qi]!;
      const take = Math.min(c.length - this.off, this.bulkLen - this.bulkGot);
      const whole = this.bulkGot === 0 && take === this.bulkLen;
      if (whole || take >= SMALL_PIECE_BYTES) {
        this.flushStaging();
        this.bulkParts.push(c.subarray(this.off, this.off + take));
      } else {
        this.stage(c, this.off, take);
      }
      this.bulkGot += take;
      this.consume(take);
    }
    this.flushStaging();
    return true;
  }

  private stage(c: Buffer, from: number, n: number): void {
    let at = from;
    let left = n;
    while (left > 0) {
      if (this.staging === null) {
        // Bounded step: never more than 64 KiB, never more than the string still needs.
        this.staging = Buffer.allocUnsafe(Math.min(STAGING_BYTES, this.bulkLen - this.bulkGot - (at - from)));
        this.stagingUsed = 0;
      }
      const k = Math.min(left, this.staging.length - this.stagingUsed);
      c.copy(this.staging, this.stagingUsed, at, at + k);
      this.stagingUsed += k;
      at += k;
      left -= k;
      if (this.stagingUsed === this.staging.length) this.flushStaging();
    }
  }

  private flushStaging(): void {
    if (this.staging !== null && this.stagingUsed > 0) this.bulkParts.push(this.staging.subarray(0, this.stagingUsed));
    this.staging = null;
    this.stagingUsed = 0;
  }

  private assembleBulk(): Buffer {
    const parts = this.bulkParts;
    this.bulkParts = [];
    if (parts.length === 0) return EMPTY;
    if (parts.length === 1) return parts[0]!;
    return Buffer.concat(parts, this.bulkLen);
  }

  private consume(n: number): void {
    this.off += n;
    this.queued -= n;
    while (this.qi < this.queue.length && this.off >= this.queue[this.qi]!.length) {
      this.qi++;
      this.off = 0;
    }
    if (this.qi >= this.queue.length) {
      this.queue = [];
      this.qi = 0;
    } else if (this.qi > 64) {
      this.queue = this.queue.slice(this.qi);
      this.qi = 0;
    }
  }

  private release(): void {
    this.queue = [];
    this.qi = 0;
    this.off = 0;
    this.queued = 0;
    this.args = [];
    this.bulkParts = [];
    this.staging = null;
    this.lineView = null;
    this.lineBuf = null;
  }
}

function protocol(replyText: string): TwError {
  return engineProtocolErrors.create('TW_RESP_PROTOCOL', replyText, { details: { replyText } });
}

function limit(replyText: string | null, why: string): TwError {
  return engineProtocolErrors.create('TW_RESP_LIMIT', replyText === null ? `Protocol limit: ${why}` : `${replyText} (${why})`, {
    details: { replyText },
  });
}

function isOwnError(err: unknown): err is TwError {
  return engineProtocolErrors.is(err, 'TW_RESP_PROTOCOL') || engineProtocolErrors.is(err, 'TW_RESP_LIMIT');
}

/**
 * The bytes to send for a parser error before closing (`-ERR Protocol error: ...\r\n`), exactly
 * as redis-server words them; null when Redis closes without a reply (or `err` is not one).
 */
export function respErrorReply(err: unknown): Buffer | null {
  if (!isOwnError(err)) return null;
  const text = err.details?.['replyText'];
  if (typeof text !== 'string') return null;
  return Buffer.from(`-ERR ${text}\r\n`, 'latin1');
}
