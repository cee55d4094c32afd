import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TwError } from '@tw/errors';
import type { Peer, Transport } from '@tw/transport';
import { memoryNetwork, memoryTransport, type MemoryNetwork, type MemoryNetworkOptions } from '../src/index.js';

/** A virtual clock: the network's delays go here and run in time order, as the simulator's would. */
class VirtualClock {
  now = 0;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  readonly delays: number[] = [];
  readonly schedule = (ms: number, fn: () => void): void => {
    this.delays.push(ms);
    this.timers.push({ at: this.now + ms, seq: this.seq++, fn });
  };

  /** Fires timers in order, letting promise chains run between them; bounded. */
  async run(stepsMax = 100_000): Promise<void> {
    for (let i = 0; i < stepsMax; i++) {
      for (let k = 0; k < 3; k++) await nextTurn();
      if (this.timers.length === 0) return;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const t = this.timers.shift()!;
      this.now = t.at;
      t.fn();
    }
    throw new Error('virtual clock did not settle');
  }
}

interface World {
  net: MemoryNetwork;
  clock: VirtualClock;
  server: Transport;
  client: Transport;
  peer: Peer;
  arrivals: number[];
  address: string;
}

async function world(options: MemoryNetworkOptions): Promise<World> {
  const clock = new VirtualClock();
  const net = memoryNetwork(options, { schedule: clock.schedule });
  const server = memoryTransport({ node: 'server' })({ network: net });
  const client = memoryTransport({ node: 'client' })({ network: net });
  const arrivals: number[] = [];
  const listener = await server.listen('server:7000', (req) => {
    arrivals.push(req.header.readUInt32LE(0));
    return { header: req.header };
  });
  const peer = await client.dial(listener.address);
  return { net, clock, server, client, peer, arrivals, address: listener.address };
}

function header(i: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(i);
  return h;
}

/** Sends `count` requests, runs the clock, aborts what never came back; returns who got an answer. */
async function exchange(w: World, count: number): Promise<boolean[]> {
  const controllers = Array.from({ length: count }, () => new AbortController());
  const outcomes = Array.from({ length: count }, (_, i) =>
    w.peer.request({ header: header(i) }, { signal: controllers[i]!.signal }).then(
      () => true,
      (e: unknown) => {
        expect(e).toBeInstanceOf(TwError);
        expect((e as TwError).code).toBe('TW_TRANSPORT_ABORTED');
        return false;
      },
    ),
  );
  await w.clock.run();
  for (const c of controllers) c.abort();
  return Promise.all(outcomes);
}

async function closeWorld(w: World): Promise<void> {
  const closing = Promise.all([w.client.close(), w.server.close()]);
  await w.clock.run();
  await closing;
  expect(w.client.stats()).toEqual({ listeners: 0, connections: 0, pendingRequests: 0 });
  expect(w.server.stats()).toEqual({ listeners: 0, connections: 0, pendingRequests: 0 });
}

describe('memory network knobs', () => {
  it('replays the same drops and delays for the same seed, and different ones for another seed', async () => {
    const run = async (seed: number): Promise<{ answered: boolean[]; delays: number[] }> => {
      const w = await world({ seed, dropProbability: 0.3, latencyMs: { min: 1, max: 50 } });
      const answered = await exchange(w, 200);
      const delays = [...w.clock.delays];
      await closeWorld(w);
      return { answered, delays };
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(a).toEqual(b);
    expect(c.answered).not.toEqual(a.answered);
    // About half answer: a request and its reply each survive with probability 0.7.
    const share = a.answered.filter(Boolean).length / a.answered.length;
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
    expect(Math.min(...a.delays.filter((d) => d > 0))).toBeGreaterThanOrEqual(1);
    expect(Math.max(...a.delays)).toBeLessThanOrEqual(50);
  });

  it('loses every message with dropProbability 1; calls end only by abort', async () => {
    const w = await world({ seed: 1, dropProbability: 1 });
    const answered = await exchange(w, 10);
    expect(answered.every((x) => !x)).toBe(true);
    // 10 requests and their 10 cancels, all lost.
    expect(w.net.dropped).toBe(20);
    expect(w.net.delivered).toBe(0);
    expect(w.arrivals).toEqual([]);
    await closeWorld(w);
  });

  it('keeps send order under random latency unless reorder is on', async () => {
    const ordered = await world({ seed: 5, latencyMs: { min: 0, max: 20 } });
    expect((await exchange(ordered, 100)).every(Boolean)).toBe(true);
    expect(ordered.arrivals).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await closeWorld(ordered);

    const shuffled = await world({ seed: 5, latencyMs: { min: 0, max: 20 }, reorder: true });
    expect((await exchange(shuffled, 100)).every(Boolean)).toBe(true);
    expect([...shuffled.arrivals].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(shuffled.arrivals).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    await closeWorld(shuffled);
  });

  it('partitions: existing connections lose messages, dials fail with a coded error, heal restores', async () => {
    const w = await world({ seed: 3 });
    w.net.partition(['client'], ['server']);
    expect((await exchange(w, 5)).every((x) => !x)).toBe(true);
    const other = memoryTransport({ node: 'client' })({ network: w.net });
    const dial = other.dial(w.address).then(
      () => 'connected',
      (e: unknown) => (e as TwError).code,
    );
    await w.clock.run();
    expect(await dial).toBe('TW_TRANSPORT_CONNECT_FAILED');
    w.net.heal();
    expect((await exchange(w, 5)).every(Boolean)).toBe(true);
    await other.close();
    await closeWorld(w);
  });

  it('refuses knobs out of range with a coded error', () => {
    expect(() => memoryNetwork({ dropProbability: 2 })).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_BAD_OPTION' }));
    expect(() => memoryNetwork({ latencyMs: { min: 5, max: 1 } })).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_BAD_OPTION' }));
    expect(() => memoryTransport({ inflightPerConnectionMax: 0 })).toThrow(expect.objectContaining({ code: 'TW_TRANSPORT_BAD_OPTION' }));
  });
});
