/** The fragment handlers over a real block map: liveness on the wire, bad-fragment log bounds. */
import { describe, expect, test } from 'vitest';
import { type Command, encodeCommand, memoryKvStore, openBlockMap } from '@tw/block-map';
import { BadFragmentLog } from '../src/index.js';
import { checkFragmentsImpl, reportBadFragmentsImpl } from '../src/fragment-handlers.js';

async function mapWithBlocks() {
  const map = await openBlockMap(memoryKvStore());
  let index = 0;
  const run = async (command: Command): Promise<void> => {
    const r = (await map.apply(++index, encodeCommand({ clientId: 0, seq: 0, nowMs: 5000, command }))).result;
    if (!r.ok) throw new Error(r.code);
  };
  const redundancy = { kind: 'ec' as const, k: 2, m: 1 };
  await run({ op: 'init-cluster', rules: { pgCount: 8, domainLevels: ['host'], redundancy, failureDomain: 'host', domainCapMax: 0 } });
  for (const [i, id] of ['a', 'b', 'c'].entries()) await run({ op: 'register-node', id, address: `127.0.0.1:${9000 + i}`, domain: `h${i}`, weight: 1 });
  await run({ op: 'create-namespace', name: 'ns', quotaBytes: null, defaultTtlMs: 0, redundancy, tokenHash: new Uint8Array(0) });
  const top = (1n << 64n) - 1n;
  await run({ op: 'commit-blocks', namespace: 'ns', blocks: [{ key: Buffer.from('k'), sizeBytes: 1, checksum: 1n, fragmentNodes: ['a', 'b', 'c'], writeVersion: top }] });
  return { map, top };
}

describe('checkFragmentsImpl', () => {
  test('committed / other index / never committed, with 64-bit versions, as wire enums; answers tallied', async () => {
    const { map, top } = await mapWithBlocks();
    const tally = { live: 0, dead: 0, unknown: 0 };
    const f = (version: bigint, index: number) => ({ namespace: 'ns', key: Buffer.from('k'), version: String(version), index });
    const res = await checkFragmentsImpl({ nodeId: 'b', fragments: [f(top, 1), f(top, 0), f(top - 1n, 1)] }, map, tally);
    expect(res.liveness).toEqual(['FRAGMENT_LIVENESS_LIVE', 'FRAGMENT_LIVENESS_DEAD', 'FRAGMENT_LIVENESS_DEAD']);
    expect(res.nodeRegisteredAtMs).toBe('5000');
    expect(tally).toEqual({ live: 1, dead: 2, unknown: 0 });
    const stranger = await checkFragmentsImpl({ nodeId: 'zz', fragments: [f(top, 1)] }, map, tally);
    expect(stranger).toEqual({ liveness: ['FRAGMENT_LIVENESS_UNKNOWN'], nodeRegisteredAtMs: '0' });
    await expect(checkFragmentsImpl({ nodeId: '', fragments: [] }, map, tally)).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
    await expect(checkFragmentsImpl({ nodeId: 'b', fragments: [f(1n << 64n, 0)] }, map, tally)).rejects.toMatchObject({ code: 'TW_COORD_BAD_REQUEST' });
  });
});

describe('bad-fragment log', () => {
  const report = (i: number, reason = 'missing') => ({ namespace: 'ns', key: Buffer.from(`k${i}`), version: String(i), index: 0, nodeId: 'a', reason, detail: '', seenAtMs: '0', count: 1 });

  test('deduplicates by fragment, keeps the most recent first, stays within its bound', () => {
    let now = 0;
    const log = new BadFragmentLog(3, () => now);
    for (let i = 0; i < 5; i++) {
      now = i;
      reportBadFragmentsImpl({ gatewayId: 'g', reports: [report(i)], dropped: '0' }, log, undefined);
    }
    expect(log.size).toBe(3);
    expect(log.evicted).toBe(2);
    now = 10;
    reportBadFragmentsImpl({ gatewayId: 'h', reports: [report(2, 'corrupt'), report(2, 'bogus')], dropped: '4' }, log, undefined);
    expect(log.list(10).map((e) => [Buffer.from(e.key).toString(), e.count, e.reason, [...e.gateways]])).toEqual([
      ['k2', 3, 'other', ['g', 'h']],
      ['k4', 1, 'missing', ['g']],
      ['k3', 1, 'missing', ['g']],
    ]);
    expect(Object.fromEntries(log.totals())).toEqual({ missing: 5, corrupt: 1, other: 1 });
    expect(log.droppedByGateways).toBe(4);
  });

  test('logs new fragments once, with a bounded sample; refuses oversized or malformed calls', () => {
    const lines: object[] = [];
    const log = new BadFragmentLog(100, () => 0);
    const logger = { warn: (o: object) => void lines.push(o) };
    reportBadFragmentsImpl({ gatewayId: 'g', reports: Array.from({ length: 20 }, (_, i) => report(i)), dropped: '0' }, log, logger);
    reportBadFragmentsImpl({ gatewayId: 'g', reports: [report(1)], dropped: '0' }, log, logger); // seen before: no line
    expect(lines).toHaveLength(1);
    expect((lines[0] as { sample: unknown[]; newFragments: number }).sample).toHaveLength(8);
    expect(() => reportBadFragmentsImpl({ gatewayId: 'g', reports: Array.from({ length: 1025 }, (_, i) => report(i)), dropped: '0' }, log, undefined)).toThrow(/at most 1024/);
    expect(() => reportBadFragmentsImpl({ gatewayId: 'g', reports: [{ ...report(1), key: Buffer.alloc(0) }], dropped: '0' }, log, undefined)).toThrow(/needs namespace/);
  });
});
