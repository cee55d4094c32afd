/** Bad-fragment reports: batching, deduplication, bounds, failures; and the gateway sending them over gRPC. */
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { ReportBadFragmentsRequestMsg } from '@tw/rpc';
import { FragmentClient } from '@tw/fragment-protocol';
import { tcpTransport } from '@tw/transport-tcp';
import { type BadFragment, BadFragmentReporter } from '../src/index.js';
import { TestCluster, key, seededBytes } from './cluster.js';

const bad = (i: number, reason: BadFragment['reason'] = 'missing', nodeId = 'sn-1'): BadFragment => ({
  namespace: 'default',
  key: Buffer.from(`k-${i}`),
  version: 100n + BigInt(i),
  index: i % 6,
  nodeId,
  reason,
});

function recorder(fail = false): { calls: ReportBadFragmentsRequestMsg[]; send: (r: ReportBadFragmentsRequestMsg) => Promise<unknown>; inflight: () => number; maxInflight: number } {
  const state = { calls: [] as ReportBadFragmentsRequestMsg[], inflight: 0, maxInflight: 0 };
  return {
    calls: state.calls,
    inflight: () => state.inflight,
    get maxInflight() {
      return state.maxInflight;
    },
    send: async (r) => {
      state.inflight++;
      state.maxInflight = Math.max(state.maxInflight, state.inflight);
      state.calls.push(r);
      await Promise.resolve();
      state.inflight--;
      if (fail) throw new Error('coordinators unreachable');
      return { accepted: r.reports.length };
    },
  };
}

describe('BadFragmentReporter', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('deduplicates sightings of one fragment while queued, and carries the count', async () => {
    const r = recorder();
    const rep = new BadFragmentReporter({ gatewayId: 'gw', intervalMs: 1000 }, r.send, () => 0);
    for (let n = 0; n < 5; n++) rep.report(bad(1));
    rep.report(bad(1, 'corrupt', 'sn-2')); // another node: another fragment
    expect(rep.stats().queued).toBe(2);
    await rep.flush();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.reports.map((x) => [x.nodeId, x.count, x.reason])).toEqual([
      ['sn-1', 5, 'missing'],
      ['sn-2', 1, 'corrupt'],
    ]);
    expect(r.calls[0]!.gatewayId).toBe('gw');
    expect(rep.stats()).toMatchObject({ queued: 0, sent: 2, dropped: 0 });
  });

  test('a full queue drops sightings, counts them, and tells the coordinators how many', async () => {
    const r = recorder();
    const rep = new BadFragmentReporter({ gatewayId: 'gw', queueMax: 3 }, r.send, () => 0);
    for (let i = 0; i < 10; i++) rep.report(bad(i));
    rep.report(bad(0)); // already queued: counted, not dropped
    expect(rep.stats()).toMatchObject({ queued: 3, dropped: 7 });
    await rep.flush();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.reports).toHaveLength(3);
    expect(r.calls[0]!.dropped).toBe('7');
    expect(r.calls[0]!.reports[0]!.count).toBe(2);
  });

  test('at most one call per interval and one in flight, however many sightings arrive', async () => {
    vi.useFakeTimers({ now: 0 });
    const r = recorder();
    const sentAt: number[] = [];
    const rep = new BadFragmentReporter({ gatewayId: 'gw', intervalMs: 1000 }, (req) => {
      sentAt.push(Date.now());
      return r.send(req);
    });
    // 3 s of reads, a sighting every 10 ms (300 distinct fragments).
    for (let t = 0; t < 3000; t += 10) {
      rep.report(bad(t));
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(2000);
    expect(sentAt.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < sentAt.length; i++) expect(sentAt[i]! - sentAt[i - 1]!).toBeGreaterThanOrEqual(1000);
    expect(r.maxInflight).toBe(1);
    expect(r.calls.reduce((n, c) => n + c.reports.length, 0)).toBe(300);
    await rep.close();
  });

  test('a failing coordinator loses the batch (counted); report() never throws', async () => {
    const r = recorder(true);
    const rep = new BadFragmentReporter({ gatewayId: 'gw' }, r.send, () => 0);
    rep.report(bad(1));
    rep.report(bad(2));
    await rep.flush();
    expect(rep.stats()).toMatchObject({ failed: 2, sent: 0, queued: 0 });
    expect(() => rep.report(bad(3))).not.toThrow();
    await rep.close();
    rep.report(bad(4)); // after close: ignored
    expect(rep.stats().queued).toBe(0);
  });
});

describe('gateway reports bad fragments to the coordinators', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  test('a fragment deleted on its node is read around and reported as missing', async () => {
    cluster = await TestCluster.start(6);
    const writer = await cluster.gateway();
    const value = seededBytes(256 * 1024 + 5, 7);
    await writer.put('default', key('lose-one'), value, { mode: 'sync' });
    const rec = (await cluster.coordinator.map.getBlock('default', key('lose-one')))!;
    const victim = cluster.nodes.find((n) => n.id === rec.fragmentNodes[0])!;
    const t = tcpTransport()({});
    try {
      const fc = new FragmentClient(await t.dial(victim.address));
      expect(await fc.delete({ namespace: 'default', key: key('lose-one'), version: rec.writeVersion, index: 0 })).toBe(true);
    } finally {
      await t.close();
    }
    const reader = await cluster.gateway({ badFragmentReportIntervalMs: 0 });
    expect((await reader.get('default', key('lose-one')))!.equals(value)).toBe(true);
    await reader.close(); // flushes the reporter
    const reports = cluster.coordinator.badFragmentReports;
    expect(reports.map((r) => [r.nodeId, r.index, r.reason, r.version, r.key.toString()])).toEqual([[victim.id, 0, 'missing', rec.writeVersion.toString(), 'lose-one']]);
    expect(reader.stats().badFragmentReportsSent).toBe(1);
  });

  test('read repair: the missing fragment is rebuilt and rewritten to its node; a later read is not degraded', async () => {
    cluster = await TestCluster.start(6);
    const writer = await cluster.gateway();
    const value = seededBytes(512 * 1024 + 11, 8);
    await writer.put('default', key('repair-me'), value, { mode: 'sync' });
    const rec = (await cluster.coordinator.map.getBlock('default', key('repair-me')))!;
    const id = (index: number) => ({ namespace: 'default', key: key('repair-me'), version: rec.writeVersion, index });
    const victim = cluster.nodes.find((n) => n.id === rec.fragmentNodes[1])!;
    const t = tcpTransport()({});
    try {
      const fc = new FragmentClient(await t.dial(victim.address));
      const original = (await fc.get(id(1)))!.bytes.toString('hex');
      expect(await fc.delete(id(1))).toBe(true);
      // Without read repair the hole stays.
      const plain = await cluster.gateway({ readRepair: false });
      expect((await plain.get('default', key('repair-me')))!.equals(value)).toBe(true);
      expect(await fc.get(id(1))).toBeUndefined();
      const reader = await cluster.gateway();
      expect((await reader.get('default', key('repair-me')))!.equals(value)).toBe(true);
      expect(reader.stats().degradedReads).toBe(1);
      const t0 = Date.now();
      while (reader.stats().readRepairs + reader.stats().readRepairFailures === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
      expect(reader.stats()).toMatchObject({ readRepairs: 1, readRepairFailures: 0 });
      // Byte-identical to what the writer stored, header included.
      expect((await fc.get(id(1)))!.bytes.toString('hex')).toBe(original);
      const later = await cluster.gateway();
      expect((await later.get('default', key('repair-me')))!.equals(value)).toBe(true);
      expect(later.stats().badFragments).toBe(0);
    } finally {
      await t.close();
    }
  });
});
