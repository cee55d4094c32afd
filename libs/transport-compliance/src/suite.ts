import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TwError, isTwError } from '@tw/errors';
import type { IncomingRequest, Listener, Peer, Reply, RequestHandler, Transport, TransportLimitOptions } from '@tw/transport';
import type { ComplianceBackend, RawConnection } from './backend.js';
import { fillPattern, hasPattern, pattern, seededRandom } from './patterns.js';

const MiB = 1024 * 1024;

/** A promise with its resolver outside: lets a test hold handlers and release them in a chosen order. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Sockets and servers the process holds open, by kind (real OS resources on TCP). */
function netResources(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'PipeWrap').length;
}

/** Waits until `cond` holds, bounded in turns and in time (10 s); a wait, never a speed assertion. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  for (let i = 0; i < 100_000 && performance.now() < deadline; i++) {
    if (cond()) return;
    // Spin a few turns, then back off so a loaded machine is not kept busy.
    if (i < 200) await nextTurn();
    else await new Promise((r) => setTimeout(r, 2));
  }
  if (!cond()) throw new Error(`timed out waiting until ${what}`);
}

async function rejection(p: Promise<unknown>): Promise<TwError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TwError);
    return err as TwError;
  }
  throw new Error('expected a rejection');
}

const text = (s: string): Uint8Array => Buffer.from(s);
const str = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString();

/** Echo: header back with 'echo:' prefix, payload back as is (a view of the received bytes). */
const echo: RequestHandler = (req) => ({ header: Buffer.concat([text('echo:'), req.header]), payload: req.payload });

/**
 * Registers the transport compliance tests for one backend (call inside a vitest test file):
 *
 * ```ts
 * transportComplianceSuite({ name: 'tcp', supports: {...}, create: (o) => tcpTransport(o)({}), ... });
 * ```
 */
export function transportComplianceSuite(backend: ComplianceBackend): void {
  describe(`transport compliance: ${backend.name}`, () => {
    let transports: Transport[] = [];
    let raws: RawConnection[] = [];
    let resourcesBefore = 0;

    const make = async (options?: TransportLimitOptions): Promise<Transport> => {
      const t = await backend.create(options);
      transports.push(t);
      return t;
    };

    /** A server transport with `handler` and a client peer dialled to it. */
    const pair = async (
      handler: RequestHandler,
      opts: { server?: TransportLimitOptions; client?: TransportLimitOptions; onError?: (e: Error) => void } = {},
    ): Promise<{ server: Transport; client: Transport; listener: Listener; peer: Peer }> => {
      const server = await make(opts.server);
      const client = await make(opts.client);
      const listener = await server.listen(backend.listenAddress(), handler, opts.onError === undefined ? {} : { onError: opts.onError });
      const peer = await client.dial(listener.address);
      return { server, client, listener, peer };
    };

    beforeEach(() => {
      resourcesBefore = netResources();
    });

    afterEach(async () => {
      for (const r of raws) r.destroy();
      raws = [];
      await Promise.all(transports.map((t) => t.close()));
      for (const t of transports) expect(t.stats()).toEqual({ listeners: 0, connections: 0, pendingRequests: 0 });
      transports = [];
      await eventually(() => netResources() <= resourcesBefore, 'sockets and listeners are released');
    });

    describe('request-response', () => {
      it('echoes header and payload, with and without a payload, and gathers payload lists', async () => {
        const { peer } = await pair(echo);
        const r1 = await peer.request({ header: text('a') });
        expect(str(r1.header)).toBe('echo:a');
        expect(r1.payload.length).toBe(0);
        const r2 = await peer.request({ header: text('b'), payload: pattern(1000, 2) });
        expect(hasPattern(r2.payload, 2)).toBe(true);
        const whole = pattern(300_000, 3);
        const r3 = await peer.request({ header: new Uint8Array(0), payload: [whole.subarray(0, 7), new Uint8Array(0), whole.subarray(7, 200_000), whole.subarray(200_000)] });
        expect(hasPattern(r3.payload, 3)).toBe(true);
        expect(str(r3.header)).toBe('echo:');
      });

      it('replies with a list of payload buffers and calls onSent once they are written', async () => {
        let sent = 0;
        const body = pattern(700_000, 4);
        const { peer } = await pair(() => ({ header: text('ok'), payload: [body.subarray(0, 100), body.subarray(100)], onSent: () => sent++ }));
        const r = await peer.request({ header: text('x') });
        expect(hasPattern(r.payload, 4)).toBe(true);
        await eventually(() => sent === 1, 'onSent ran');
      });

      it('lets the handler keep request payloads and the caller reuse its buffers once a call settles', async () => {
        const kept: Buffer[] = [];
        const { peer } = await pair((req) => {
          kept.push(req.payload);
          return { header: req.header };
        });
        const reused = Buffer.alloc(200_000);
        for (let i = 0; i < 8; i++) {
          fillPattern(reused, i);
          await peer.request({ header: text(`k${i}`), payload: reused });
        }
        reused.fill(0);
        kept.forEach((p, i) => expect(hasPattern(p, i)).toBe(true));
      });

      it('delivers requests in send order on a one-connection pool and matches out-of-order replies to their calls', async () => {
        const seen: number[] = [];
        const gates: { resolve: () => void }[] = [];
        const { peer } = await pair(
          async (req) => {
            const n = req.header.readUInt32LE(0);
            seen.push(n);
            const g = deferred();
            gates.push(g);
            await g.promise;
            return { header: req.header, payload: Buffer.alloc(n % 7, n & 0xff) };
          },
          { client: { connectionsPerPeerMax: 1 } },
        );
        const count = 64;
        const calls = Array.from({ length: count }, (_, i) => {
          const h = Buffer.alloc(4);
          h.writeUInt32LE(i);
          return peer.request({ header: h });
        });
        await eventually(() => gates.length === count, 'every request reached the handler');
        expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
        // Release in reverse order: each call still gets its own reply.
        for (const g of [...gates].reverse()) g.resolve();
        const replies = await Promise.all(calls);
        replies.forEach((r, i) => {
          expect(Buffer.from(r.header).readUInt32LE(0)).toBe(i);
          expect(r.payload.length).toBe(i % 7);
          expect(r.payload.every((b) => b === (i & 0xff))).toBe(true);
        });
      });

      it('keeps 1,000 requests in flight on one peer, each answered with its own bytes', async () => {
        const rnd = seededRandom(1000);
        const { peer } = await pair(async (req) => {
          const turns = Math.floor(rnd() * 4);
          for (let i = 0; i < turns; i++) await nextTurn();
          return { header: req.header, payload: req.payload };
        });
        const calls = Array.from({ length: 1000 }, (_, i) => {
          const h = Buffer.alloc(8);
          h.writeUInt32LE(i, 0);
          return peer.request({ header: h, payload: pattern(16 + (i % 50) * 37, i) });
        });
        const replies = await Promise.all(calls);
        replies.forEach((r, i) => {
          expect(Buffer.from(r.header).readUInt32LE(0)).toBe(i);
          expect(hasPattern(r.payload, i)).toBe(true);
        });
      });

      it('bounds requests in flight per connection (back-pressure), and queued calls still complete', async () => {
        let running = 0;
        let runningMax = 0;
        const { peer } = await pair(
          async (req) => {
            running++;
            runningMax = Math.max(runningMax, running);
            for (let i = 0; i < 3; i++) await nextTurn();
            running--;
            return { header: req.header };
          },
          { client: { connectionsPerPeerMax: 1, inflightPerConnectionMax: 4 } },
        );
        const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => peer.request({ header: Buffer.from([i]) })));
        expect(replies.map((r) => r.header[0])).toEqual(Array.from({ length: 50 }, (_, i) => i));
        expect(runningMax).toBeLessThanOrEqual(4);
        expect(runningMax).toBeGreaterThan(1);
      });

      it('moves 64 MiB payloads in both directions, intact', async () => {
        const up = pattern(64 * MiB, 64);
        const down = pattern(64 * MiB, 65);
        let receivedOk = false;
        const { peer } = await pair((req) => {
          receivedOk = req.payload.length === up.length && req.payload.equals(up);
          return { header: text('down'), payload: down };
        });
        const r = await peer.request({ header: text('up'), payload: up });
        expect(receivedOk).toBe(true);
        expect(r.payload.length).toBe(64 * MiB);
        expect(Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.length).equals(down)).toBe(true);
        const into = Buffer.alloc(64 * MiB + 5);
        const r2 = await peer.request({ header: text('again') }, { into });
        expect(r2.payload.length).toBe(64 * MiB);
        expect(Buffer.from(into.buffer, into.byteOffset, 64 * MiB).equals(down)).toBe(true);
      });
    });

    describe('caller-supplied destination', () => {
      it('reads the response payload into `into` and returns a view of it', async () => {
        const { peer, client } = await pair(echo);
        const region = client.registerMemory(Buffer.alloc(3 * MiB));
        for (const size of [0, 1, 4095, 70_000, 3 * MiB]) {
          const r = await peer.request({ header: text('i'), payload: pattern(size, size) }, { into: region.buffer });
          expect(r.payload.length).toBe(size);
          if (backend.supports.intoIsView) {
            expect(r.payload.buffer).toBe(region.buffer.buffer);
            expect(r.payload.byteOffset).toBe(region.buffer.byteOffset);
          }
          expect(hasPattern(region.buffer.subarray(0, size), size)).toBe(true);
        }
        region.deregister();
      });

      it('receives request payloads where the server says (payloadDestination), as views of that buffer', async () => {
        const server = await make();
        const client = await make();
        const pool = Buffer.alloc(2 * MiB);
        const asked: number[] = [];
        const listener = await server.listen(
          backend.listenAddress(),
          (req) => ({ header: Buffer.from([req.payload.buffer === pool.buffer ? 1 : 0]), payload: req.payload }),
          { payloadDestination: (header, bytes) => (asked.push(bytes), header[0] === 1 ? pool : undefined) },
        );
        const peer = await client.dial(listener.address);
        const r1 = await peer.request({ header: Buffer.from([1]), payload: pattern(MiB + 3, 1) });
        expect(r1.header[0]).toBe(1);
        expect(hasPattern(pool.subarray(0, MiB + 3), 1)).toBe(true);
        expect(hasPattern(r1.payload, 1)).toBe(true);
        const r2 = await peer.request({ header: Buffer.from([0]), payload: pattern(1000, 2) });
        expect(r2.header[0]).toBe(0);
        expect(hasPattern(r2.payload, 2)).toBe(true);
        await peer.request({ header: Buffer.from([1]) });
        expect(asked).toEqual([MiB + 3, 1000]);
        // A hook that throws fails that request with its code; the connection goes on.
        const l2 = await server.listen(backend.listenAddress(), echo, {
          payloadDestination: () => {
            throw new TwError('TW_COMPLIANCE_NO_BUFFER', 'pool empty', { retryable: true });
          },
        });
        const p2 = await client.dial(l2.address);
        expect((await rejection(p2.request({ header: text('x'), payload: pattern(300_000, 1) }))).code).toBe('TW_COMPLIANCE_NO_BUFFER');
        expect(str((await p2.request({ header: text('y') })).header)).toBe('echo:y');
      });

      it('refuses a payload larger than `into` with a coded error and keeps the connection', async () => {
        const { peer } = await pair(echo);
        const small = Buffer.alloc(1000, 0xee);
        const err = await rejection(peer.request({ header: text('big'), payload: pattern(200_000, 9) }, { into: small }));
        expect(err.code).toBe('TW_TRANSPORT_DESTINATION_TOO_SMALL');
        expect(small.every((b) => b === 0xee)).toBe(true);
        const r = await peer.request({ header: text('next'), payload: pattern(5000, 10) });
        expect(hasPattern(r.payload, 10)).toBe(true);
      });
    });

    describe('payload progress (PayloadSink)', () => {
      /** A listener whose payloadDestination hands out a sink that logs every event. */
      const sinkServer = async (
        handler: RequestHandler,
        hooks: { onBytes?: (n: number, listener: Listener, which: number) => void } = {},
      ): Promise<{ listener: Listener; peer: Peer; events: string[]; buffers: Buffer[]; progress: number[][] }> => {
        const server = await make();
        const client = await make();
        const events: string[] = [];
        const buffers: Buffer[] = [];
        const progress: number[][] = [];
        const listener: Listener = await server.listen(
          backend.listenAddress(),
          (req, ctx) => {
            events.push(`handler:${str(req.header)}`);
            return handler(req, ctx);
          },
          {
            payloadDestination: (header, bytes) => {
              const name = str(header);
              const buffer = Buffer.alloc(bytes + 100);
              const seen: number[] = [];
              const which = buffers.length;
              buffers.push(buffer);
              progress.push(seen);
              events.push(`dest:${name}`);
              return {
                buffer,
                onBytes: (n) => {
                  seen.push(n);
                  hooks.onBytes?.(n, listener, which);
                },
                onAbandon: (reason) => events.push(`abandon:${name}:${isTwError(reason) ? reason.code : 'uncoded'}`),
              };
            },
          },
        );
        const peer = await client.dial(listener.address);
        return { listener, peer, events, buffers, progress };
      };

      it('reports bytes in increasing order, each reported prefix final, the last report before the handler', async () => {
        const checks: boolean[] = [];
        const expectedOf: Buffer[] = [];
        const { peer, events, buffers, progress } = await sinkServer((req) => ({ header: req.header, payload: req.payload.subarray(0, 8) }), {
          onBytes: (n, _listener, which) => {
            // The prefix reported is already the payload's bytes (checked while the rest arrives).
            checks.push(buffers[which]!.subarray(0, n).equals(expectedOf[which]!.subarray(0, n)));
          },
        });
        const sizes = [1, 70_000, 5 * MiB + 7];
        for (const [i, size] of sizes.entries()) {
          const expected = pattern(size, 40 + i);
          expectedOf.push(expected);
          const r = await peer.request({ header: text(`p${i}`), payload: expected });
          expect(str(r.header)).toBe(`p${i}`);
          const seen = progress[i]!;
          expect(seen.length).toBeGreaterThan(0);
          for (let k = 1; k < seen.length; k++) expect(seen[k]!).toBeGreaterThan(seen[k - 1]!);
          expect(seen[seen.length - 1]).toBe(size);
          expect(buffers[i]!.subarray(0, size).equals(expected)).toBe(true);
        }
        expect(checks.length).toBeGreaterThan(0);
        expect(checks.every((c) => c)).toBe(true);
        expect(events).toEqual(['dest:p0', 'handler:p0', 'dest:p1', 'handler:p1', 'dest:p2', 'handler:p2']);
      });

      it('tells the sink (onAbandon, once, no handler) when the connection dies mid-payload; the call fails with a code', async () => {
        let killed = false;
        let afterAbandon = 0;
        const { peer, events } = await sinkServer((req) => ({ header: req.header }), {
          onBytes: (_n, listener) => {
            if (events.some((e) => e.startsWith('abandon:'))) afterAbandon++;
            if (!killed) {
              killed = true;
              void listener.abort();
            }
          },
        });
        const err = await rejection(peer.request({ header: text('dies'), payload: pattern(24 * MiB, 5) }));
        expect(err.code).toMatch(/^TW_TRANSPORT_(CONNECTION_CLOSED|CONNECT_FAILED)$/);
        await eventually(() => events.length >= 2, 'the sink learned the payload is lost');
        expect(events).toEqual(['dest:dies', 'abandon:dies:TW_TRANSPORT_CONNECTION_CLOSED']);
        expect(afterAbandon).toBe(0);
      });

      it('fails the call with the error of a sink that throws, abandons it once, and keeps the connection', async () => {
        const { peer, events } = await sinkServer((req) => ({ header: req.header }), {
          onBytes: () => {
            if (!events.includes('handler:ok')) throw new TwError('TW_COMPLIANCE_SINK_FAILED', 'disk gone');
          },
        });
        const err = await rejection(peer.request({ header: text('bad'), payload: pattern(3 * MiB, 6) }));
        expect(err.code).toBe('TW_COMPLIANCE_SINK_FAILED');
        await eventually(() => events.includes('abandon:bad:TW_COMPLIANCE_SINK_FAILED'), 'the sink was abandoned');
        expect(events.filter((e) => e.endsWith(':bad') || e.includes(':bad:'))).toEqual(['dest:bad', 'abandon:bad:TW_COMPLIANCE_SINK_FAILED']);
        // Next request on the same connection: the handler now runs (the hook throws only before it has).
        events.push('handler:ok');
        const r = await peer.request({ header: text('next'), payload: pattern(2 * MiB, 7) });
        expect(str(r.header)).toBe('next');
      });

      it('reports response bytes landing in `into` (onPayloadBytes): increasing, each prefix final, the last before resolve', async () => {
        const { peer } = await pair(echo);
        for (const [i, size] of [1, 70_000, 6 * MiB + 3].entries()) {
          const expected = pattern(size, 60 + i);
          const into = Buffer.alloc(size + 10);
          const seen: number[] = [];
          let prefixesOk = true;
          let resolved = false;
          const call = peer.request(
            { header: text('r'), payload: expected },
            {
              into,
              onPayloadBytes: (n) => {
                if (resolved) prefixesOk = false;
                seen.push(n);
                if (!into.subarray(0, n).equals(expected.subarray(0, n))) prefixesOk = false;
              },
            },
          );
          const r = await call.then((v) => ((resolved = true), v));
          expect(r.payload.length).toBe(size);
          expect(prefixesOk).toBe(true);
          expect(seen.length).toBeGreaterThan(0);
          for (let k = 1; k < seen.length; k++) expect(seen[k]!).toBeGreaterThan(seen[k - 1]!);
          expect(seen[seen.length - 1]).toBe(size);
        }
        // A hook that throws fails its call with the error; the connection goes on.
        const err = await rejection(
          peer.request(
            { header: text('t'), payload: pattern(3 * MiB, 1) },
            {
              into: Buffer.alloc(3 * MiB),
              onPayloadBytes: () => {
                throw new TwError('TW_COMPLIANCE_HOOK_FAILED', 'hash pipeline gone');
              },
            },
          ),
        );
        expect(err.code).toBe('TW_COMPLIANCE_HOOK_FAILED');
        const r = await peer.request({ header: text('n'), payload: pattern(2 * MiB, 2) }, { into: Buffer.alloc(2 * MiB) });
        expect(hasPattern(r.payload, 2)).toBe(true);
      });

      it('gives every request exactly one outcome, handler or onAbandon, under client aborts (seeded)', async () => {
        const rnd = seededRandom(99);
        const { peer, events } = await sinkServer(async (req) => ({ header: req.header }));
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 12; i++) {
          const controller = new AbortController();
          const call = peer.request({ header: text(`a${i}`), payload: pattern(Math.floor(rnd() * 3 * MiB) + 1, i) }, { signal: controller.signal });
          calls.push(call.catch((e: unknown) => e));
          if (rnd() < 0.5) setTimeout(() => controller.abort(new Error('test abort')), Math.floor(rnd() * 3));
        }
        await Promise.all(calls);
        // Every request whose destination was asked ends once (aborted calls may still run: the
        // frame was on the wire); the connection still serves.
        const r = await peer.request({ header: text('after'), payload: pattern(1000, 1) });
        expect(str(r.header)).toBe('after');
        for (let i = 0; i < 12; i++) {
          const asked = events.filter((e) => e === `dest:a${i}`).length;
          const ends = events.filter((e) => e === `handler:a${i}` || e.startsWith(`abandon:a${i}:`)).length;
          expect(ends).toBe(asked);
        }
      });
    });

    describe('aborts', () => {
      it('rejects a call whose signal is already aborted without sending it', async () => {
        let calls = 0;
        const { peer } = await pair((req) => {
          calls++;
          return { header: req.header };
        });
        const err = await rejection(peer.request({ header: text('x') }, { signal: AbortSignal.abort() }));
        expect(err.code).toBe('TW_TRANSPORT_ABORTED');
        await peer.request({ header: text('y') });
        expect(calls).toBe(1);
      });

      it('rejects an in-flight call at once, tells the handler, and never writes its late reply into `into`', async () => {
        const gate = deferred();
        let handlerSignal: AbortSignal | undefined;
        const { peer } = await pair(async (req, ctx) => {
          if (str(req.header) === 'slow') {
            handlerSignal = ctx.signal;
            await gate.promise;
            return { header: text('late'), payload: Buffer.alloc(2 * MiB, 0xab) };
          }
          return { header: req.header, payload: req.payload };
        });
        const into = Buffer.alloc(2 * MiB, 0);
        const ac = new AbortController();
        const slow = peer.request({ header: text('slow') }, { into, signal: ac.signal });
        await eventually(() => handlerSignal !== undefined, 'the handler started');
        ac.abort(new Error('deadline'));
        const err = await rejection(slow);
        expect(err.code).toBe('TW_TRANSPORT_ABORTED');
        await eventually(() => handlerSignal!.aborted, 'the handler saw the abort');
        gate.resolve();
        // Later traffic on the same peer works and the late reply never lands in `into`.
        for (let i = 0; i < 5; i++) {
          const r = await peer.request({ header: text(`n${i}`), payload: pattern(100_000, i) });
          expect(hasPattern(r.payload, i)).toBe(true);
        }
        expect(into.every((b) => b === 0)).toBe(true);
      });

      it('aborts calls mid-payload and keeps serving the others on the same connection', async () => {
        const { peer } = await pair(async (req) => {
          await nextTurn();
          return { header: req.header, payload: pattern(4 * MiB, req.header[0]!) };
        }, { client: { connectionsPerPeerMax: 1 } });
        const calls: Promise<unknown>[] = [];
        const intos: Buffer[] = [];
        for (let i = 0; i < 12; i++) {
          const ac = new AbortController();
          const into = Buffer.alloc(4 * MiB);
          intos.push(into);
          const p = peer.request({ header: Buffer.from([i]) }, { into, signal: ac.signal });
          if (i % 3 === 1) {
            // Abort after some bytes may have arrived.
            setTimeout(() => ac.abort(), 1 + i);
            calls.push(p.then(() => 'done', (e: unknown) => (isTwError(e, 'TW_TRANSPORT_ABORTED') ? 'aborted' : e)));
          } else {
            calls.push(p.then((r) => (hasPattern((r as { payload: Uint8Array }).payload, i) ? 'done' : 'corrupt')));
          }
        }
        const outcomes = await Promise.all(calls);
        for (const o of outcomes) expect(['done', 'aborted']).toContain(o);
        outcomes.forEach((o, i) => {
          if (i % 3 !== 1) expect(o).toBe('done');
        });
      });

      it('passes the differential property: random sizes, destinations and aborts (seeded)', async () => {
        const { peer } = await pair(async (req) => {
          const turns = req.header[1]! % 3;
          for (let i = 0; i < turns; i++) await nextTurn();
          // Reply: header reversed, payload = request payload then a pattern tail.
          const tail = pattern(req.header.readUInt32LE(4), req.header[0]!);
          return { header: Buffer.from(req.header).reverse(), payload: [req.payload, tail] };
        });
        const op = fc.record({
          seed: fc.integer({ min: 0, max: 255 }),
          turns: fc.integer({ min: 0, max: 255 }),
          upBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300_000 })),
          tailBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300_000 })),
          into: fc.constantFrom('none', 'fits', 'small'),
          abort: fc.constantFrom('never', 'before', 'soon'),
        });
        await fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
            const results = await Promise.all(
              ops.map(async (o) => {
                const header = Buffer.alloc(8);
                header[0] = o.seed;
                header[1] = o.turns;
                header.writeUInt32LE(o.tailBytes, 4);
                const up = pattern(o.upBytes, o.seed + 1000);
                const total = o.upBytes + o.tailBytes;
                const into = o.into === 'none' ? undefined : Buffer.alloc(o.into === 'fits' ? total + 3 : Math.max(0, total - 1));
                const ac = new AbortController();
                if (o.abort === 'before') ac.abort();
                const p = peer.request({ header, payload: up }, { ...(into === undefined ? {} : { into }), signal: ac.signal });
                if (o.abort === 'soon') queueMicrotask(() => ac.abort());
                try {
                  const r = await p;
                  const expected = Buffer.concat([up, pattern(o.tailBytes, o.seed)]);
                  const ok =
                    Buffer.from(r.header).equals(Buffer.from(header).reverse()) &&
                    Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.length).equals(expected) &&
                    o.abort !== 'before' &&
                    !(o.into === 'small' && total > 0);
                  return ok ? 'ok' : 'wrong';
                } catch (err) {
                  if (!(err instanceof TwError)) return 'uncoded';
                  if (err.code === 'TW_TRANSPORT_ABORTED') return o.abort === 'never' ? 'wrong' : 'ok';
                  if (err.code === 'TW_TRANSPORT_DESTINATION_TOO_SMALL') return o.into === 'small' && total > 0 ? 'ok' : 'wrong';
                  return `unexpected ${err.code}`;
                }
              }),
            );
            expect(results.filter((r) => r !== 'ok')).toEqual([]);
          }),
          { seed: 20261128, numRuns: 30 },
        );
      });
    });

    describe('failures', () => {
      it('fails every pending call with a coded error when the peer dies mid-request', async () => {
        const started: AbortSignal[] = [];
        const { peer, listener } = await pair(async (_req, ctx) => {
          started.push(ctx.signal);
          await new Promise<void>(() => undefined); // never answers
          return { header: text('never') };
        });
        const calls = Array.from({ length: 40 }, (_, i) =>
          rejection(peer.request({ header: text(`c${i}`), payload: pattern(i * 1000, i) }, i % 2 ? { into: Buffer.alloc(10) } : {})),
        );
        await eventually(() => started.length >= 20, 'handlers started');
        await listener.abort();
        const errors = await Promise.all(calls);
        for (const e of errors) expect(e.code).toMatch(/^TW_TRANSPORT_(CONNECTION_CLOSED|CONNECT_FAILED)$/);
        for (const s of started) expect(s.aborted).toBe(true);
        // Calls after the death fail with a code too, they do not hang.
        const after = await rejection(peer.request({ header: text('after') }));
        expect(after.code).toMatch(/^TW_TRANSPORT_(CONNECTION_CLOSED|CONNECT_FAILED)$/);
      });

      it('fails calls still waiting for a slot too when the peer dies (reconnect refused), none hangs', async () => {
        let started = 0;
        const { peer, listener } = await pair(
          async () => {
            started++;
            await new Promise<void>(() => undefined);
            return { header: text('never') };
          },
          { client: { connectionsPerPeerMax: 2, inflightPerConnectionMax: 2 } },
        );
        const calls = Array.from({ length: 12 }, (_, i) => rejection(peer.request({ header: text(`w${i}`) })));
        await eventually(() => started >= 2, 'handlers started');
        await listener.abort();
        const errors = await Promise.all(calls);
        for (const e of errors) expect(e.code).toMatch(/^TW_TRANSPORT_(CONNECTION_CLOSED|CONNECT_FAILED)$/);
      });

      it('refuses to dial an address where nothing listens, with a coded error', async () => {
        const server = await make();
        const listener = await server.listen(backend.listenAddress(), echo);
        const address = listener.address;
        await listener.close();
        const client = await make();
        const err = await rejection(client.dial(address));
        expect(err.code).toBe('TW_TRANSPORT_CONNECT_FAILED');
        expect(err.retryable).toBe(true);
      });

      it('rethrows a remote TwError with its code, retryable flag and details; other throws become REMOTE_ERROR', async () => {
        const { peer } = await pair((req) => {
          if (str(req.header) === 'tw') throw new TwError('TW_COMPLIANCE_EXAMPLE', 'fragment missing', { retryable: true, details: { fragment: 'f1' } });
          if (str(req.header) === 'plain') throw new Error('boom');
          return { header: text('fine') };
        });
        const e1 = await rejection(peer.request({ header: text('tw'), payload: pattern(100_000, 1) }));
        expect(e1.code).toBe('TW_COMPLIANCE_EXAMPLE');
        expect(e1.message).toContain('fragment missing');
        expect(e1.retryable).toBe(true);
        expect(e1.details).toEqual({ fragment: 'f1' });
        const e2 = await rejection(peer.request({ header: text('plain') }));
        expect(e2.code).toBe('TW_TRANSPORT_REMOTE_ERROR');
        expect(e2.message).toContain('boom');
        expect(str((await peer.request({ header: text('ok') })).header)).toBe('fine');
      });
    });

    describe('maximum frame size', () => {
      it('refuses an oversized request locally with a coded error and keeps working', async () => {
        const { peer } = await pair(echo, { client: { payloadBytesMax: MiB } });
        const err = await rejection(peer.request({ header: text('big'), payload: [Buffer.alloc(MiB), Buffer.alloc(1)] }));
        expect(err.code).toBe('TW_TRANSPORT_FRAME_TOO_LARGE');
        expect(hasPattern((await peer.request({ header: text('ok'), payload: pattern(MiB, 5) })).payload, 5)).toBe(true);
      });

      it('has the server refuse a request over its limit with a coded error; connection and server survive', async () => {
        const errors: Error[] = [];
        let handled = 0;
        const { peer } = await pair(
          (req) => {
            handled++;
            return { header: req.header, payload: req.payload };
          },
          { server: { payloadBytesMax: MiB }, onError: (e) => errors.push(e) },
        );
        const err = await rejection(peer.request({ header: text('big'), payload: pattern(3 * MiB, 1) }));
        expect(err.code).toBe('TW_TRANSPORT_FRAME_TOO_LARGE');
        expect(handled).toBe(0);
        const r = await peer.request({ header: text('small'), payload: pattern(MiB, 2) });
        expect(hasPattern(r.payload, 2)).toBe(true);
        expect(errors.some((e) => isTwError(e, 'TW_TRANSPORT_FRAME_TOO_LARGE'))).toBe(true);
      });

      it('refuses a reply over the client limit with a coded error and keeps the connection', async () => {
        const { peer } = await pair((req) => ({ header: req.header, payload: Buffer.alloc(str(req.header) === 'big' ? 2 * MiB : 10) }), {
          client: { payloadBytesMax: MiB },
        });
        const err = await rejection(peer.request({ header: text('big') }));
        expect(err.code).toBe('TW_TRANSPORT_FRAME_TOO_LARGE');
        expect((await peer.request({ header: text('small') })).payload.length).toBe(10);
      });

      it('refuses an oversized header with a coded error', async () => {
        const { peer } = await pair(echo);
        const err = await rejection(peer.request({ header: Buffer.alloc(1024 * 1024) }));
        expect(err.code).toBe('TW_TRANSPORT_HEADER_TOO_LARGE');
      });
    });

    describe.runIf(backend.supports.rawInjection)('malformed frames', () => {
      const garbage: [string, () => Uint8Array][] = [
        ['random bytes', () => pattern(4096, 77)],
        ['a valid-looking prefix with an absurd header length', () => Buffer.from([0x54, 0x57, 1, 1, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0])],
        ['an unknown version', () => Buffer.from([0x54, 0x57, 99, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
      ];
      for (const [name, bytes] of garbage) {
        it(`closes a connection that sends ${name}, reports it, and keeps serving others`, async () => {
          const errors: Error[] = [];
          const { peer, listener, client } = await pair(echo, { onError: (e) => errors.push(e) });
          const raw = await backend.rawConnect!(listener.address);
          raws.push(raw);
          raw.write(bytes());
          const { errorCode } = await raw.closed;
          if (errorCode !== undefined) expect(errorCode).toBe('TW_TRANSPORT_MALFORMED_FRAME');
          expect(errors.some((e) => isTwError(e, 'TW_TRANSPORT_MALFORMED_FRAME'))).toBe(true);
          // The existing peer and a new one are both served.
          expect(hasPattern((await peer.request({ header: text('still'), payload: pattern(10_000, 1) })).payload, 1)).toBe(true);
          const peer2 = await client.dial(listener.address);
          expect(str((await peer2.request({ header: text('new') })).header)).toBe('echo:new');
        });
      }
    });

    describe('lifecycle', () => {
      it('closes a listener gracefully: running handlers finish and reply first', async () => {
        const gate = deferred();
        let started = false;
        const { peer, listener } = await pair(async (req: IncomingRequest): Promise<Reply> => {
          started = true;
          await gate.promise;
          return { header: req.header, payload: req.payload };
        });
        const call = peer.request({ header: text('inflight'), payload: pattern(500_000, 8) });
        await eventually(() => started, 'the handler started');
        const closing = listener.close();
        gate.resolve();
        const r = await call;
        expect(hasPattern(r.payload, 8)).toBe(true);
        await closing;
      });

      it('closes a listener gracefully while a large request is still arriving: it completes', async () => {
        const server = await make();
        const client = await make();
        let closing: Promise<void> | undefined;
        let listener: Listener | undefined;
        listener = await server.listen(backend.listenAddress(), (req) => ({ header: req.header, payload: req.payload.subarray(0, 16) }), {
          // Called once the header is in and the payload starts arriving: close right then.
          payloadDestination: (header) => {
            if (str(header) === 'big') closing = listener!.close();
            return undefined;
          },
        });
        const peer = await client.dial(listener.address);
        const r = await peer.request({ header: text('big'), payload: pattern(32 * MiB, 3) });
        expect(hasPattern(r.payload, 3)).toBe(true);
        expect(closing).toBeDefined();
        await closing;
        listener = undefined;
      });

      it('closing a peer fails its pending calls with TW_TRANSPORT_CLOSED and refuses new ones', async () => {
        const { peer } = await pair(async () => {
          await new Promise<void>(() => undefined);
          return { header: text('never') };
        });
        const pending = rejection(peer.request({ header: text('p') }));
        await nextTurn();
        await peer.close();
        expect((await pending).code).toMatch(/^TW_TRANSPORT_(CLOSED|CONNECTION_CLOSED)$/);
        expect((await rejection(peer.request({ header: text('q') }))).code).toBe('TW_TRANSPORT_CLOSED');
      });

      it('leaves no sockets or listeners behind after many dials and closes', async () => {
        const before = netResources();
        const server = await backend.create();
        const client = await backend.create();
        const listener = await server.listen(backend.listenAddress(), echo);
        for (let i = 0; i < 10; i++) {
          const peer = await client.dial(listener.address);
          await Promise.all(Array.from({ length: 20 }, (_, j) => peer.request({ header: text(`${i}.${j}`), payload: pattern(50_000, j) })));
          await peer.close();
        }
        expect(client.stats().connections).toBe(0);
        await client.close();
        await server.close();
        expect(server.stats()).toEqual({ listeners: 0, connections: 0, pendingRequests: 0 });
        expect(client.stats()).toEqual({ listeners: 0, connections: 0, pendingRequests: 0 });
        await eventually(() => netResources() <= before, 'sockets and listeners are released');
      });
    });
  });
}


