import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameKind, WIRE_PREFIX_BYTES } from '@tw/transport';
import { decodeFramePrefix, encodeFrameHead, type FramePrefix } from '../src/frame.js';
import { FrameReader, type FrameSink, type PayloadPlan } from '../src/frame-reader.js';

interface Frame {
  id: number;
  header: Buffer;
  payload: Buffer;
  mode: 'into' | 'own' | 'discard';
}

function encode(frames: readonly Frame[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => [encodeFrameHead(FrameKind.RESPONSE, f.id, f.header, f.payload.length), f.payload]));
}

function bytesOf(seed: number, n: number): Buffer {
  const unit = Buffer.allocUnsafe(251);
  for (let i = 0; i < unit.length; i++) unit[i] = (seed * 31 + i * 7) & 0xff;
  return n === 0 ? Buffer.alloc(0) : Buffer.alloc(n, unit);
}

/** Records what the reader delivers; plans per frame come from the frame list. */
class Recorder implements FrameSink {
  readonly got: { id: number; header: Buffer; payload: Buffer; into?: Buffer }[] = [];
  readonly intos = new Map<number, Buffer>();
  malformed: Error | undefined;
  constructor(private readonly frames: readonly Frame[]) {}
  onFrame(prefix: FramePrefix, header: Buffer): PayloadPlan {
    const f = this.frames.find((x) => x.id === prefix.id)!;
    if (f.mode === 'into') {
      const into = Buffer.alloc(prefix.payloadBytes + 3, 0xee);
      this.intos.set(prefix.id, into);
      return { mode: 'into', into, complete: (payload) => this.got.push({ id: prefix.id, header, payload: Buffer.from(payload), into }) };
    }
    if (f.mode === 'discard') return { mode: 'discard', complete: () => this.got.push({ id: prefix.id, header, payload: Buffer.alloc(0) }) };
    return { mode: 'own', complete: (payload) => this.got.push({ id: prefix.id, header, payload }) };
  }
  onMalformed(error: Error): void {
    this.malformed = error;
  }
}

/** Plays `wire` through an onread-mode reader: each read fills up to `readSizes[i]` of the installed buffer. */
function playOnread(reader: FrameReader, wire: Buffer, readSizes: readonly number[]): void {
  let off = 0;
  for (let i = 0; off < wire.length; i++) {
    const buf = reader.nextReadBuffer();
    const n = Math.min(buf.length, wire.length - off, readSizes[i % readSizes.length]!);
    buf.set(wire.subarray(off, off + n));
    off += n;
    reader.onRead(n);
  }
}

const frameArb = fc.record({
  headerBytes: fc.integer({ min: 0, max: 40 }),
  payloadBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 60_000, max: 200_000 })),
  mode: fc.constantFrom<'into' | 'own' | 'discard'>('into', 'own', 'discard'),
});

describe('FrameReader', () => {
  it('delivers the same frames whatever the chunking, in chunk and onread modes (seeded property)', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 10 }), (specs, sizes) => {
        const frames: Frame[] = specs.map((s, i) => ({ id: i + 1, header: bytesOf(i, s.headerBytes), payload: bytesOf(i + 100, s.payloadBytes), mode: s.mode }));
        const wire = encode(frames);
        const expected = frames.map((f) => ({ id: f.id, header: f.header, payload: f.mode === 'discard' ? Buffer.alloc(0) : f.payload }));
        const check = (rec: Recorder): void => {
          expect(rec.malformed).toBeUndefined();
          expect(rec.got.map((g) => g.id)).toEqual(expected.map((e) => e.id));
          rec.got.forEach((g, i) => {
            expect(g.header.equals(expected[i]!.header)).toBe(true);
            expect(g.payload.equals(expected[i]!.payload)).toBe(true);
          });
          for (const g of rec.got) {
            if (g.into !== undefined) expect(g.into.subarray(g.payload.length).every((b) => b === 0xee)).toBe(true);
          }
        };
        // Chunk mode: split the wire at the drawn sizes.
        const chunked = new Recorder(frames);
        const chunkReader = new FrameReader(chunked, false);
        for (let off = 0, i = 0; off < wire.length; i++) {
          const n = Math.min(sizes[i % sizes.length]!, wire.length - off);
          const chunk = Buffer.from(wire.subarray(off, off + n));
          chunkReader.consume(chunk, chunk.length, true);
          off += n;
        }
        check(chunked);
        // onread mode, with and without redirect support.
        for (const redirect of [true, false]) {
          const rec = new Recorder(frames);
          const reader = new FrameReader(rec, true);
          if (redirect) reader.redirect = () => true;
          playOnread(reader, wire, sizes);
          check(rec);
        }
      }),
      { seed: 4242, numRuns: 100 },
    );
  });

  it('reads a large payload straight into the destination in onread mode (no copy)', () => {
    const payload = bytesOf(1, 1_000_000);
    const into = Buffer.alloc(1_000_000);
    const frames: Frame[] = [{ id: 1, header: Buffer.from('h'), payload, mode: 'into' }];
    const sink: FrameSink = {
      onFrame: () => ({ mode: 'into', into, complete: () => undefined }),
      onMalformed: () => undefined,
    };
    const reader = new FrameReader(sink, true);
    reader.redirect = () => true;
    const wire = encode(frames);
    let direct = 0;
    let off = 0;
    while (off < wire.length) {
      const buf = reader.nextReadBuffer();
      if (buf.buffer === into.buffer) direct += Math.min(buf.length, wire.length - off);
      const n = Math.min(buf.length, wire.length - off, 128 * 1024);
      buf.set(wire.subarray(off, off + n));
      off += n;
      reader.onRead(n);
    }
    expect(into.equals(payload)).toBe(true);
    // All but what shared the first read with the prefix went straight to `into`.
    expect(direct).toBeGreaterThan(payload.length - 256 * 1024);
  });

  it('after abandon, never writes into the caller buffer again (redirects the pending read)', () => {
    const into = Buffer.alloc(500_000, 0);
    let plan: PayloadPlan | undefined;
    let completed = false;
    const sink: FrameSink = {
      onFrame: (p) => (p.id === 1 ? (plan = { mode: 'into', into, complete: () => (completed = true) }) : { mode: 'own', complete: () => undefined }),
      onMalformed: () => undefined,
    };
    const reader = new FrameReader(sink, true);
    let redirected: Uint8Array | undefined;
    reader.redirect = (buf) => {
      redirected = buf;
      return true;
    };
    const wire = encode([
      { id: 1, header: Buffer.alloc(0), payload: Buffer.alloc(500_000, 0xab), mode: 'into' },
      { id: 2, header: Buffer.alloc(0), payload: Buffer.alloc(10, 1), mode: 'own' },
    ]);
    // First read: prefix plus some payload via scratch; second buffer is direct into `into`.
    let buf = reader.nextReadBuffer();
    buf.set(wire.subarray(0, 100_000));
    reader.onRead(100_000);
    buf = reader.nextReadBuffer();
    expect(buf.buffer).toBe(into.buffer);
    reader.abandon(plan!);
    expect(redirected).toBeDefined();
    expect(redirected!.buffer).not.toBe(into.buffer);
    // The socket now reads into the redirected scratch buffer.
    let off = 100_000;
    while (off < wire.length) {
      const target = off === 100_000 ? redirected! : reader.nextReadBuffer();
      expect(target.buffer).not.toBe(into.buffer);
      const n = Math.min(target.length, wire.length - off);
      target.set(wire.subarray(off, off + n));
      off += n;
      reader.onRead(n);
    }
    expect(completed).toBe(false);
    expect(into.subarray(100_000 - WIRE_PREFIX_BYTES).every((b) => b === 0)).toBe(true);
  });

  it('reports garbage once and consumes nothing after it', () => {
    let malformed = 0;
    let frames = 0;
    const reader = new FrameReader({ onFrame: () => (frames++, { mode: 'discard', complete: () => undefined }), onMalformed: () => malformed++ }, false);
    const garbage = Buffer.alloc(64, 0x41);
    reader.consume(garbage, garbage.length, true);
    reader.consume(encodeFrameHead(FrameKind.RESPONSE, 1, Buffer.alloc(0), 0), WIRE_PREFIX_BYTES, true);
    expect(malformed).toBe(1);
    expect(frames).toBe(0);
  });
});

describe('frame prefix', () => {
  it('round-trips and rejects bad magic, version, kind, lengths and id 0', () => {
    const head = encodeFrameHead(FrameKind.REQUEST, 7, Buffer.from('abc'), 1234);
    expect(decodeFramePrefix(head)).toEqual({ kind: FrameKind.REQUEST, id: 7, headerBytes: 3, payloadBytes: 1234 });
    const bad = (mutate: (b: Buffer) => void): unknown => {
      const b = Buffer.from(head);
      mutate(b);
      try {
        decodeFramePrefix(b);
        return 'accepted';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    expect(bad((b) => b.writeUInt16LE(0x1234, 0))).toBe('TW_TRANSPORT_MALFORMED_FRAME');
    expect(bad((b) => b.writeUInt8(2, 2))).toBe('TW_TRANSPORT_MALFORMED_FRAME');
    expect(bad((b) => b.writeUInt8(9, 3))).toBe('TW_TRANSPORT_MALFORMED_FRAME');
    expect(bad((b) => b.writeUInt32LE(0, 4))).toBe('TW_TRANSPORT_MALFORMED_FRAME');
    expect(bad((b) => b.writeUInt32LE(1 << 20, 8))).toBe('TW_TRANSPORT_MALFORMED_FRAME');
    expect(bad((b) => b.writeUInt32LE(0xffffffff, 12))).toBe('TW_TRANSPORT_MALFORMED_FRAME');
  });
});
