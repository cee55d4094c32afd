import { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Transport } from '@tw/transport';
import { tcpTransport } from '../src/index.js';
import { FrameReader } from '../src/frame-reader.js';

const transports: Transport[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(transports.splice(0).map((t) => t.close()));
});

function make(options: Parameters<typeof tcpTransport>[0] = {}): Transport {
  const t = tcpTransport(options)({});
  transports.push(t);
  return t;
}

describe('tcp transport specifics', () => {
  it('writes header and payload with one gather write, from the caller buffer itself (no copy)', async () => {
    const server = make();
    const listener = await server.listen('127.0.0.1:0', (req) => ({ header: req.header }));
    const peer = await make().dial(listener.address);
    const payload = Buffer.alloc(4 * 1024 * 1024, 9);
    type WritevChunk = { chunk: Buffer };
    const proto = Socket.prototype as unknown as { _writev: (chunks: WritevChunk[], cb: (e?: Error) => void) => void };
    const batches: WritevChunk[][] = [];
    const original = proto._writev;
    vi.spyOn(proto, '_writev').mockImplementation(function (this: Socket, chunks, cb) {
      batches.push(chunks.filter((c) => c?.chunk !== undefined));
      return original.call(this, chunks, cb);
    });
    await peer.request({ header: Buffer.from('op'), payload });
    const batch = batches.find((b) => b.some((c) => c.chunk.buffer === payload.buffer));
    expect(batch).toBeDefined();
    expect(batch!.length).toBe(2);
    // The second chunk is the caller's bytes, not a copy.
    expect(batch![1]!.chunk.buffer).toBe(payload.buffer);
    expect(batch![1]!.chunk.byteOffset).toBe(payload.byteOffset);
  });

  it('reads a large response payload from the socket straight into `into` (no intermediate copy)', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 0x42);
    const server = make();
    const listener = await server.listen('127.0.0.1:0', () => ({ header: Buffer.from('ok'), payload: body }));
    const peer = await make().dial(listener.address);
    const into = Buffer.alloc(body.length);
    const installed: Uint8Array[] = [];
    const original = FrameReader.prototype.nextReadBuffer;
    vi.spyOn(FrameReader.prototype, 'nextReadBuffer').mockImplementation(function (this: FrameReader) {
      const b = original.call(this);
      installed.push(b);
      return b;
    });
    const r = await peer.request({ header: Buffer.from('get') }, { into });
    expect(into.equals(body)).toBe(true);
    expect(r.payload.buffer).toBe(into.buffer);
    const direct = installed.filter((b) => b.buffer === into.buffer).reduce((n, b) => n + b.length, 0);
    // Every direct read is offered the rest of the payload; at least the first one covers most of it.
    expect(direct).toBeGreaterThan(body.length - 256 * 1024);
  });

  it('reads a large request payload from the socket straight into the server destination (no copy)', async () => {
    const dest = Buffer.alloc(8 * 1024 * 1024);
    const server = make();
    let sameBuffer = false;
    const listener = await server.listen('127.0.0.1:0', (req) => ((sameBuffer = req.payload.buffer === dest.buffer), { header: Buffer.from('ok') }), {
      payloadDestination: () => dest,
    });
    const peer = await make().dial(listener.address);
    const installed: Uint8Array[] = [];
    const original = FrameReader.prototype.nextReadBuffer;
    vi.spyOn(FrameReader.prototype, 'nextReadBuffer').mockImplementation(function (this: FrameReader) {
      const b = original.call(this);
      installed.push(b);
      return b;
    });
    const body = Buffer.alloc(dest.length, 0x37);
    await peer.request({ header: Buffer.from('put'), payload: body });
    expect(sameBuffer).toBe(true);
    expect(dest.equals(body)).toBe(true);
    expect(installed.some((b) => b.buffer === dest.buffer)).toBe(true);
  });

  it('a server at its in-flight bound still reads the payload of a request whose header it took (pauses only between frames)', async () => {
    // A request's payload may feed work that others wait on (a storage node writes a streamed
    // put as it arrives, and puts behind it are acknowledged only after it): pausing the socket
    // in the middle of that payload, because the request itself reached the bound, could leave
    // the payload and the running requests waiting on each other.
    // Bound 2: the slow request runs, the big one's header brings the connection to the bound.
    const server = make({ serverInflightPerConnectionMax: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const big = 8 * 1024 * 1024;
    const dest = Buffer.alloc(big);
    let received = 0;
    const startedHeaders: string[] = [];
    let firstStarted!: () => void;
    const started = new Promise<void>((r) => (firstStarted = r));
    const listener = await server.listen(
      '127.0.0.1:0',
      async (req) => {
        startedHeaders.push(req.header.toString());
        if (req.header.toString() === 'slow') firstStarted();
        if (req.header.toString() !== 'third') await gate;
        return { header: req.header };
      },
      { payloadDestination: (_header, bytes) => (bytes === big ? { buffer: dest, onBytes: (n: number) => (received = n) } : undefined) },
    );
    const peer = await make({ connectionsPerPeerMax: 1 }).dial(listener.address);
    const first = peer.request({ header: Buffer.from('slow') });
    first.catch(() => undefined); // settled below; closing the transports after a failure rejects it
    await started;
    const second = peer.request({ header: Buffer.from('big'), payload: Buffer.alloc(big, 0x42) });
    second.catch(() => undefined);
    // Bounded wait (real time) for the whole payload to arrive while the first request still runs.
    for (let i = 0; i < 2000 && received < big; i++) await new Promise((r) => setTimeout(r, 5));
    // Back-pressure still holds between frames: with both running, a third request is not taken.
    const third = peer.request({ header: Buffer.from('third') });
    third.catch(() => undefined);
    for (let i = 0; i < 2000 && startedHeaders.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    const startedAtBound = [...startedHeaders];
    release();
    expect(received).toBe(big);
    expect(startedAtBound).toEqual(['slow', 'big']);
    expect((await first).header.toString()).toBe('slow');
    expect((await second).header.toString()).toBe('big');
    expect((await third).header.toString()).toBe('third');
    expect(dest.every((b) => b === 0x42)).toBe(true);
  });

  it('stops reading new requests while the listener holds serverPayloadBytesHigh of payloads, and resumes when handlers finish', async () => {
    const MiB = 1024 * 1024;
    const server = make({ serverPayloadBytesHigh: 2 * MiB, serverPayloadBytesHard: 64 * MiB });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started: string[] = [];
    const listener = await server.listen('127.0.0.1:0', async (req) => {
      started.push(req.header.toString());
      await gate;
      return { header: req.header };
    });
    const peer = await make({ connectionsPerPeerMax: 1 }).dial(listener.address);
    const calls = Array.from({ length: 6 }, (_, i) => peer.request({ header: Buffer.from(`r${i}`), payload: Buffer.alloc(MiB, i) }));
    for (const c of calls) c.catch(() => undefined);
    // Bounded wait (real time) until the server stops taking requests.
    for (let i = 0; i < 400 && started.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    // 2 MiB held: reading stops between frames (a header taken just before may add one more).
    expect(started.length).toBeGreaterThanOrEqual(2);
    expect(started.length).toBeLessThanOrEqual(3);
    release();
    expect((await Promise.all(calls)).map((r) => r.header.toString())).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('refuses a request that would take the listener past serverPayloadBytesHard with a coded, retryable error; the connection stays usable', async () => {
    const MiB = 1024 * 1024;
    const server = make({ serverPayloadBytesHigh: 1 * MiB, serverPayloadBytesHard: 3 * MiB });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const listener = await server.listen('127.0.0.1:0', async (req) => {
      started++;
      if (req.header.toString() !== 'small') await gate;
      return { header: req.header };
    });
    // Two connections (two clients): the first holds 2 MiB, the second's 2 MiB would make 4 > 3.
    const a = await make().dial(listener.address);
    const b = await make().dial(listener.address);
    const first = a.request({ header: Buffer.from('a'), payload: Buffer.alloc(2 * MiB, 1) });
    first.catch(() => undefined);
    for (let i = 0; i < 400 && started < 1; i++) await new Promise((r) => setTimeout(r, 5));
    await expect(b.request({ header: Buffer.from('b'), payload: Buffer.alloc(2 * MiB, 2) })).rejects.toMatchObject({ code: 'TW_TRANSPORT_SERVER_BUSY', retryable: true });
    release();
    expect((await first).header.toString()).toBe('a');
    // Nothing held any more: the same connection is served.
    expect((await b.request({ header: Buffer.from('small'), payload: Buffer.alloc(2 * MiB, 3) })).header.toString()).toBe('small');
    expect(started).toBe(2);
  });

  it('refuses a hard bound below the high mark', () => {
    expect(() => tcpTransport({ serverPayloadBytesHigh: 4096, serverPayloadBytesHard: 1024 })).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_BAD_OPTION' }));
  });

  it('grows the pool to connectionsPerPeerMax under concurrent load and no further', async () => {
    const server = make();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const listener = await server.listen('127.0.0.1:0', async (req) => {
      started++;
      await gate;
      return { header: req.header };
    });
    const client = make({ connectionsPerPeerMax: 3 });
    const peer = await client.dial(listener.address);
    // Calls arriving over time while the others are busy make the pool grow, one connection at a time.
    const calls: Promise<{ header: Uint8Array }>[] = [];
    for (let i = 0; i < 30; i++) {
      calls.push(peer.request({ header: Buffer.from([i]) }));
      for (let k = 0; k < 20 && client.stats().connections < Math.min(3, i + 1); k++) await new Promise((r) => setTimeout(r, 1));
    }
    for (let i = 0; i < 10_000 && started < 30; i++) await new Promise((r) => setImmediate(r));
    expect(started).toBe(30);
    expect(client.stats().connections).toBe(3);
    expect(server.stats().connections).toBe(3);
    release();
    const replies = await Promise.all(calls);
    expect(replies.map((r) => r.header[0])).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('refuses bad addresses and options with coded errors', async () => {
    const t = make();
    await expect(t.dial('no-port')).rejects.toMatchObject({ code: 'TW_TRANSPORT_BAD_ADDRESS' });
    await expect(t.listen('127.0.0.1:99999', () => ({ header: new Uint8Array(0) }))).rejects.toMatchObject({ code: 'TW_TRANSPORT_BAD_ADDRESS' });
    expect(() => tcpTransport({ payloadBytesMax: 0 })).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_BAD_OPTION' }));
  });

  it('refuses to listen on an address in use with a coded error', async () => {
    const a = make();
    const l = await a.listen('127.0.0.1:0', () => ({ header: new Uint8Array(0) }));
    await expect(make().listen(l.address, () => ({ header: new Uint8Array(0) }))).rejects.toMatchObject({ code: 'TW_TRANSPORT_LISTEN_FAILED' });
  });
});
