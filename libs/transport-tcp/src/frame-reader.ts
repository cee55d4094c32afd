import { assert, type TwError } from '@tw/errors';
import { WIRE_PREFIX_BYTES } from '@tw/transport';
import { decodeFramePrefix, type FramePrefix } from './frame.js';
import { DIRECT_READ_MIN_BYTES, PREFIX_READ_BYTES, SCRATCH_BYTES } from './limits.js';

/** What to do with a frame's payload, decided once its prefix and header are in. */
export interface PayloadPlan {
  /**
   * 'into': write into `into` (which is at least payloadBytes long); 'own': the reader provides
   * a buffer only this frame references (a view of a received chunk, or a fresh allocation);
   * 'discard': consume and drop the bytes.
   */
  readonly mode: 'into' | 'own' | 'discard';
  readonly into?: Uint8Array;
  /** Called once the whole payload is in (empty for discard). */
  complete(payload: Buffer): void;
  /**
   * 'into' only: called as payload bytes land, with the count in so far (strictly increasing; the
   * last call, with the full length, comes just before `complete`).
   */
  progress?(receivedBytes: number): void;
  /** Called instead of `complete` when the stream fails (`fail`) while this payload is arriving. */
  abandoned?(reason: Error): void;
}

export interface FrameSink {
  onFrame(prefix: FramePrefix, header: Buffer): PayloadPlan;
  /** The stream is not a valid frame sequence; the reader consumes nothing more. */
  onMalformed(error: TwError): void;
}

const enum State {
  Prefix,
  Header,
  Payload,
}

const discardPlan: PayloadPlan = { mode: 'discard', complete: () => undefined };

/**
 * Incremental frame parser. Two ways to feed it:
 * - `consume(chunk, true)` with chunks that it may keep views of ('data' events: node hands out
 *   a fresh buffer per read), so a payload inside one chunk is delivered as a view (no copy);
 * - onread mode: `nextReadBuffer()` tells the socket where the next read goes (scratch, or the
 *   payload's destination itself so large payloads are never copied) and `onRead(n)` reports it.
 */
export class FrameReader {
  private state = State.Prefix;
  private readonly prefixBuf = Buffer.allocUnsafe(WIRE_PREFIX_BYTES);
  private fill = 0;
  private prefix: FramePrefix | undefined;
  private header: Buffer = Buffer.alloc(0);
  private plan: PayloadPlan = discardPlan;
  private target: Uint8Array | undefined;
  private scratch: Buffer | undefined;
  /** The buffer the socket reads into next (onread mode). */
  private installed: Uint8Array | undefined;
  private installedIsDirect = false;
  private failed = false;
  /** Whether the last payload was big enough for direct reads (steers the next prefix read). */
  private lastPayloadLarge = false;

  /**
   * onread mode: points the socket's next read at another buffer. Without it, reads never go
   * straight into caller-owned buffers, since an abort could not take back a read already set up.
   */
  redirect: ((buf: Uint8Array) => boolean) | undefined;

  /** @param onread whether the socket reads into `nextReadBuffer()` (else `consume` is fed chunks). */
  constructor(
    private readonly sink: FrameSink,
    private readonly onread: boolean,
  ) {}

  /** Whether a frame's payload is part-way in (its header was taken, its last byte not yet). */
  get midPayload(): boolean {
    return this.state === State.Payload && !this.failed;
  }

  /** onread mode: the buffer for the next read. */
  nextReadBuffer(): Uint8Array {
    const remaining = this.prefix === undefined ? 0 : this.prefix.payloadBytes - this.fill;
    const direct =
      this.state === State.Payload &&
      this.target !== undefined &&
      remaining >= DIRECT_READ_MIN_BYTES &&
      (this.plan.mode === 'own' || this.redirect !== undefined);
    if (direct) {
      this.installed = this.target!.subarray(this.fill, this.prefix!.payloadBytes);
      this.installedIsDirect = true;
    } else {
      this.scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
      // After a large payload the next frame is likely large too: read little more than its
      // prefix and header, so its payload goes straight to its destination instead of being
      // swallowed into scratch and copied.
      const small = this.state !== State.Payload && this.lastPayloadLarge;
      this.installed = small ? this.scratch.subarray(0, PREFIX_READ_BYTES) : this.scratch;
      this.installedIsDirect = false;
    }
    return this.installed;
  }

  /** onread mode: `n` bytes were read into the buffer `nextReadBuffer()` returned last. */
  onRead(n: number): void {
    if (this.failed) return;
    const into = this.installed;
    assert(into !== undefined, 'read reported before a buffer was installed');
    if (this.installedIsDirect) {
      // The bytes landed where the payload goes (or, if abandoned since, in a buffer nobody reads).
      assert(this.state === State.Payload && n <= this.prefix!.payloadBytes - this.fill, 'direct read overran its payload');
      this.fill += n;
      if (n > 0) this.plan.progress?.(this.fill);
      if (this.fill === this.prefix!.payloadBytes) this.finishPayload();
      return;
    }
    this.consume(into as Buffer, n, false);
  }

  /**
   * The stream is over (connection closed or destroyed): a payload still arriving will never be
   * complete, so its plan learns it; nothing is parsed any more.
   */
  fail(reason: Error): void {
    if (this.failed) return;
    this.failed = true;
    const plan = this.plan;
    const arriving = this.state === State.Payload;
    this.plan = discardPlan;
    this.target = undefined;
    if (arriving) plan.abandoned?.(reason);
  }

  /**
   * Stops delivering the current payload to `plan` (its call was aborted): the rest is discarded
   * and, in onread mode, no further read lands in the plan's buffer.
   */
  abandon(plan: PayloadPlan): void {
    if (this.plan !== plan || this.state !== State.Payload) return;
    this.plan = discardPlan;
    this.target = undefined;
    if (this.installedIsDirect && this.redirect !== undefined) {
      this.scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
      if (this.redirect(this.scratch)) {
        this.installed = this.scratch;
        this.installedIsDirect = false;
      }
    }
  }

  /** Parses `buf[0, n)`; with `retainable`, payloads inside it may be handed out as views. */
  consume(buf: Buffer, n: number, retainable: boolean): void {
    let off = 0;
    while (off < n && !this.failed) {
      switch (this.state) {
        case State.Prefix: {
          const k = Math.min(WIRE_PREFIX_BYTES - this.fill, n - off);
          buf.copy(this.prefixBuf, this.fill, off, off + k);
          this.fill += k;
          off += k;
          if (this.fill === WIRE_PREFIX_BYTES) {
            try {
              this.prefix = decodeFramePrefix(this.prefixBuf);
            } catch (err) {
              this.failed = true;
              this.sink.onMalformed(err as TwError);
              return;
            }
            this.fill = 0;
            this.header = Buffer.allocUnsafe(this.prefix.headerBytes);
            if (this.prefix.headerBytes === 0) this.startPayload();
            else this.state = State.Header;
          }
          break;
        }
        case State.Header: {
          const k = Math.min(this.header.length - this.fill, n - off);
          buf.copy(this.header, this.fill, off, off + k);
          this.fill += k;
          off += k;
          if (this.fill === this.header.length) {
            this.fill = 0;
            this.startPayload();
          }
          break;
        }
        case State.Payload: {
          const total = this.prefix!.payloadBytes;
          if (this.fill === 0 && this.plan.mode === 'own' && retainable && n - off >= total) {
            // The whole payload is inside a chunk nobody else references: hand out a view.
            const view = buf.subarray(off, off + total);
            off += total;
            this.fill = total;
            this.finishPayload(view);
            break;
          }
          if (this.target === undefined && this.plan.mode === 'own') this.target = Buffer.allocUnsafe(total);
          const k = Math.min(total - this.fill, n - off);
          if (this.target !== undefined) this.target.set(buf.subarray(off, off + k), this.fill);
          this.fill += k;
          off += k;
          if (k > 0) this.plan.progress?.(this.fill);
          if (this.fill === total) this.finishPayload();
          break;
        }
      }
    }
  }

  private startPayload(): void {
    const prefix = this.prefix!;
    const plan = this.sink.onFrame(prefix, this.header);
    this.plan = plan;
    this.state = State.Payload;
    this.fill = 0;
    if (plan.mode === 'into') {
      assert(plan.into !== undefined && plan.into.length >= prefix.payloadBytes, 'into plan without room for the payload');
      this.target = plan.into;
    } else {
      // 'own' buffers are allocated lazily: a payload inside one retainable chunk needs none.
      this.target = plan.mode === 'own' && this.onread ? Buffer.allocUnsafe(prefix.payloadBytes) : undefined;
    }
    if (prefix.payloadBytes === 0) this.finishPayload();
  }

  private finishPayload(view?: Buffer): void {
    const plan = this.plan;
    const bytes = this.prefix!.payloadBytes;
    const target = this.target;
    this.lastPayloadLarge = bytes >= DIRECT_READ_MIN_BYTES;
    this.state = State.Prefix;
    this.fill = 0;
    this.plan = discardPlan;
    this.target = undefined;
    this.prefix = undefined;
    if (view !== undefined) plan.complete(view);
    else if (target === undefined || bytes === 0) plan.complete(Buffer.alloc(0));
    else plan.complete(Buffer.from(target.buffer, target.byteOffset, bytes));
  }
}
