import type { TwError } from '@tw/errors';
import { engineProtocolErrors } from './errors.js';
import { RESP_ARGS_MAX, RESP_BULK_BYTES_MAX, RESP_LINE_BYTES_MAX } from './limits.js';
import { PieceCollector } from './piece-collector.js';
import { parseRedisLength } from './redis-integer.js';
import type { RespReply } from './resp-reply.js';

/** Deepest nesting of arrays accepted in a reply (RESP2 replies of this subset nest at most 2). */
const REPLY_DEPTH_MAX = 16;

interface Frame {
  readonly items: RespReply[];
  readonly count: number;
}

/**
 * Incremental parser of RESP2 replies, for the client side (tests, benchmarks, tools). Strict:
 * lines end with CRLF, bulk strings are followed by CRLF. Bulk values are one buffer (copied once
 * when they arrived in pieces). Errors are TW_RESP_REPLY; the parser then keeps throwing.
 */
export class RespReplyParser {
  private queue: Buffer[] = [];
  private queued = 0;
  private stack: Frame[] = [];
  private bulk: PieceCollector | null = null;
  private failure: TwError | null = null;

  get bufferedBytes(): number {
    return this.queued;
  }

  push(chunk: Buffer): void {
    if (this.failure !== null || chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
  }

  /** The next complete reply, or null until more bytes arrive. */
  next(): RespReply | null {
    if (this.failure !== null) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      if (engineProtocolErrors.is(err, 'TW_RESP_REPLY')) {
        this.failure = err;
        this.queue = [];
        this.queued = 0;
      }
      throw err;
    }
  }

  private step(): RespReply | null {
    for (;;) {
      let value: RespReply;
      if (this.bulk !== null) {
        const bulk = this.bulk;
        while (bulk.missing > 0) {
          const head = this.queue[0];
          if (head === undefined) return null;
          this.consume(bulk.take(head, 0));
        }
        if (this.queued < 2) return null;
        const crlf = this.read(2);
        if (crlf[0] !== 0x0d || crlf[1] !== 0x0a) throw bad('bulk string not followed by CRLF');
        this.bulk = null;
        value = { kind: 'bulk', value: bulk.join() };
      } else {
        const line = this.readLine();
        if (line === null) return null;
        const type = line[0];
        const body = line.subarray(1);
        if (type === 0x2b) value = { kind: 'simple', text: body.toString('latin1') };
        else if (type === 0x2d) value = { kind: 'error', text: body.toString('latin1') };
        else if (type === 0x3a) {
          const n = parseRedisLength(line, 1, line.length);
          if (n === null) throw bad('integer reply is not an integer');
          value = { kind: 'integer', value: Number.isSafeInteger(n) ? n : BigInt(body.toString('latin1')) };
        } else if (type === 0x24) {
          const n = parseRedisLength(line, 1, line.length);
          if (n === null || n < -1 || n > RESP_BULK_BYTES_MAX) throw bad('bad bulk length');
          if (n === -1) value = { kind: 'bulk', value: null };
          else {
            this.bulk = new PieceCollector(n);
            continue;
          }
        } else if (type === 0x2a) {
          const n = parseRedisLength(line, 1, line.length);
          if (n === null || n < -1 || n > RESP_ARGS_MAX) throw bad('bad array length');
          if (n === -1) value = { kind: 'array', items: null };
          else if (n === 0) value = { kind: 'array', items: [] };
          else {
            if (this.stack.length >= REPLY_DEPTH_MAX) throw bad('arrays nested too deep');
            this.stack.push({ items: [], count: n });
            continue;
          }
        } else {
          throw bad(`unknown reply type byte ${type ?? 'none'}`);
        }
      }
      // Attach to the enclosing arrays; return when a top-level reply is complete.
      for (;;) {
        const top = this.stack[this.stack.length - 1];
        if (top === undefined) return value;
        top.items.push(value);
        if (top.items.length < top.count) break;
        this.stack.pop();
        value = { kind: 'array', items: top.items };
      }
    }
  }

  private readLine(): Buffer | null {
    // Lines are short; join the queue head only while looking for the CRLF.
    let scanned = 0;
    for (let i = 0; i < this.queue.length; i++) {
      const c = this.queue[i]!;
      const lf = c.indexOf(0x0a);
      if (lf === -1) {
        scanned += c.length;
        if (scanned > RESP_LINE_BYTES_MAX) throw bad('reply line over 64 KiB');
        continue;
      }
      const total = scanned + lf + 1;
      if (total > RESP_LINE_BYTES_MAX + 2) throw bad('reply line over 64 KiB');
      const line = this.read(total);
      if (line.length < 2 || line[line.length - 2] !== 0x0d) throw bad('reply line not ended by CRLF');
      return line.subarray(0, line.length - 2);
    }
    return null;
  }

  private read(n: number): Buffer {
    const head = this.queue[0]!;
    if (head.length >= n) {
      const out = head.subarray(0, n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.queue[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      this.consume(k);
    }
    return out;
  }

  private consume(n: number): void {
    this.queued -= n;
    const head = this.queue[0]!;
    if (n === head.length) this.queue.shift();
    else this.queue[0] = head.subarray(n);
  }
}

function bad(why: string): TwError {
  return engineProtocolErrors.create('TW_RESP_REPLY', `malformed RESP reply: ${why}`);
}
