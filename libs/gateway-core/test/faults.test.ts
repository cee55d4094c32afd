/** Degraded reads, lost blocks and corrupted fragments, against real storage nodes (ec:4+2). */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { checksum64, keyHash64 } from '@tw/block-format';
import { FragmentClient } from '@tw/fragment-protocol';
import type { Peer, Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import type { BadFragment, GatewayOptions } from '../src/index.js';
import { TestCluster, key, seededBytes } from './cluster.js';

const KiB = 1024;
let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const SIZES = [1, 1000, 64 * KiB + 3, 1024 * KiB + 7, 3 * 1024 * KiB + 1];

async function writeAll(c: TestCluster): Promise<Map<string, Buffer>> {
  const gw = await c.gateway();
  const values = new Map<string, Buffer>();
  for (let i = 0; i < 12; i++) {
    const v = seededBytes(SIZES[i % SIZES.length]!, 500 + i);
    values.set(`blk-${i}`, v);
    await gw.put('default', key(`blk-${i}`), v, { mode: 'sync' });
  }
  return values;
}

async function readAll(c: TestCluster, values: Map<string, Buffer>, bad: BadFragment[] = [], options: Partial<GatewayOptions> = {}): Promise<void> {
  // A fresh gateway: no DRAM copies, every read goes to the storage nodes.
  const gw = await c.gateway(options, { hooks: { onBadFragment: (f) => bad.push(f) } });
  for (const [k, v] of values) {
    const got = await gw.get('default', key(k));
    expect(got?.equals(v), k).toBe(true);
  }
}

describe('degraded reads', () => {
  test('1 and 2 of 6 nodes down: identical bytes; 3 down: coded error, fast; back up: readable again', async () => {
    cluster = await TestCluster.start(6);
    const values = await writeAll(cluster);
    await cluster.stopNode(0);
    const bad1: BadFragment[] = [];
    // No hedging deadline in reach: each read waits for the stopped node's refusal, so every
    // block with a data fragment there reports it, however loaded the machine is.
    await readAll(cluster, values, bad1, { hedgeMs: 60_000 });
    expect(bad1.length).toBeGreaterThan(0);
    expect(bad1.every((f) => f.nodeId === 'sn-0' && f.reason === 'unreachable')).toBe(true);
    await cluster.stopNode(3);
    await readAll(cluster, values);
    // A gateway that was reading before the failures keeps working too.
    await cluster.stopNode(5);
    const gw = await cluster.gateway();
    for (const k of values.keys()) {
      await expect(gw.get('default', key(k))).rejects.toMatchObject({ code: 'TW_GATEWAY_BLOCK_UNAVAILABLE' });
    }
    await cluster.restartNode(5);
    await readAll(cluster, values);
  });

  test('writes go around a stopped node (next candidates) and read back', async () => {
    cluster = await TestCluster.start(7);
    await cluster.stopNode(2);
    const gw = await cluster.gateway();
    const values = new Map<string, Buffer>();
    for (let i = 0; i < 8; i++) {
      const v = seededBytes(10_000 + i, 900 + i);
      values.set(`w-${i}`, v);
      await gw.put('default', key(`w-${i}`), v, { mode: 'sync' });
    }
    for (const k of values.keys()) {
      const rec = await cluster.coordinator.map.getBlock('default', key(k));
      expect(rec!.fragmentNodes).not.toContain('sn-2');
      expect(new Set(rec!.fragmentNodes).size).toBe(6);
    }
    await readAll(cluster, values);
  });
});

describe('corrupted fragments', () => {
  test('wrong bytes under a valid fragment header are caught by the block checksum and rebuilt from parity', async () => {
    cluster = await TestCluster.start(6);
    const gw = await cluster.gateway();
    const value = seededBytes(1024 * KiB + 3, 77);
    const { version } = await gw.put('default', key('corrupt-me'), value, { mode: 'sync' });
    const rec = (await cluster.coordinator.map.getBlock('default', key('corrupt-me')))!;
    // Overwrite data fragment 1 with garbage that carries a correct fragment checksum.
    const node = cluster.nodes.find((n) => n.id === rec.fragmentNodes[1])!;
    const t = tcpTransport()({});
    try {
      const fc = new FragmentClient(await t.dial(node.address));
      const good = await fc.get({ namespace: 'default', key: key('corrupt-me'), version, index: 1 });
      const garbage = seededBytes(good!.bytes.length, 4242);
      await fc.put({ namespace: 'default', key: key('corrupt-me'), version, index: 1 }, { ...good!.header, fragmentChecksum: checksum64(garbage) }, garbage);
    } finally {
      await t.close();
    }
    const bad: BadFragment[] = [];
    // No hedging deadline in reach (as in the degraded-read test above), so that parity is read
    // by the wrong-bytes recovery this test is about. Under CI load this test once failed with
    // only 4 fragments readable; hedged reads cancelled at the deadline are one suspect, not
    // a proven cause.
    const reader = await cluster.gateway({ hedgeMs: 60_000 }, { hooks: { onBadFragment: (f) => bad.push(f) } });
    expect((await reader.get('default', key('corrupt-me')))!.equals(value)).toBe(true);
    expect(bad.map((f) => [f.index, f.reason, f.nodeId])).toEqual([[1, 'inconsistent', rec.fragmentNodes[1]]]);
    expect(reader.stats().degradedReads).toBe(1);
    // The zero-copy read checks the block checksum over the parts and falls back the same way.
    const partsReader = await cluster.gateway({ hedgeMs: 60_000 }, { hooks: { onBadFragment: (f) => bad.push(f) } });
    const parts = await partsReader.getParts('default', key('corrupt-me'));
    expect(Buffer.concat(parts!.parts).equals(value)).toBe(true);
    expect(parts!.degraded).toBe(true);
    parts!.release();
  });

  test('bytes flipped on disk are detected and the read reconstructs from parity', async () => {
    cluster = await TestCluster.start(6);
    const gw = await cluster.gateway();
    const value = seededBytes(2 * 1024 * KiB, 99);
    await gw.put('default', key('flip-me'), value, { mode: 'sync' });
    const rec = (await cluster.coordinator.map.getBlock('default', key('flip-me')))!;
    // Fragment 0 is the first quarter of the payload: find it in the node's extent files and flip a byte.
    const node = cluster.nodes.find((n) => n.id === rec.fragmentNodes[0])!;
    const needle = value.subarray(1000, 1064);
    let flipped = 0;
    for (const name of readdirSync(node.dir)) {
      const p = join(node.dir, name);
      if (!statSync(p).isFile()) continue;
      const bytes = readFileSync(p);
      const at = bytes.indexOf(needle);
      if (at < 0) continue;
      bytes[at + 10] = bytes[at + 10]! ^ 0x5a;
      writeFileSync(p, bytes);
      flipped++;
    }
    expect(flipped).toBe(1);
    const bad: BadFragment[] = [];
    const reader = await cluster.gateway({}, { hooks: { onBadFragment: (f) => bad.push(f) } });
    expect((await reader.get('default', key('flip-me')))!.equals(value)).toBe(true);
    expect(bad.length).toBe(1);
    expect(bad[0]!.index).toBe(0);
    expect(['corrupt', 'error']).toContain(bad[0]!.reason);
    expect(keyHash64('default', key('flip-me'))).toBeTypeOf('bigint');
  });

  test('more than m corrupted fragments: a coded error, never wrong bytes', async () => {
    cluster = await TestCluster.start(6);
    const gw = await cluster.gateway();
    const value = seededBytes(100_000, 5);
    const { version } = await gw.put('default', key('ruined'), value, { mode: 'sync' });
    const rec = (await cluster.coordinator.map.getBlock('default', key('ruined')))!;
    const t = tcpTransport()({});
    try {
      for (const index of [0, 2, 4]) {
        const node = cluster.nodes.find((n) => n.id === rec.fragmentNodes[index])!;
        const fc = new FragmentClient(await t.dial(node.address));
        const good = await fc.get({ namespace: 'default', key: key('ruined'), version, index });
        const garbage = seededBytes(good!.bytes.length, 10 + index);
        await fc.put({ namespace: 'default', key: key('ruined'), version, index }, { ...good!.header, fragmentChecksum: checksum64(garbage) }, garbage);
      }
    } finally {
      await t.close();
    }
    const reader = await cluster.gateway();
    await expect(reader.get('default', key('ruined'))).rejects.toMatchObject({ code: 'TW_GATEWAY_BLOCK_CORRUPT' });
  });
});

describe('cluster map and hedging', () => {
  test('a node that moves to a new address (new epoch) is read at its new address', async () => {
    cluster = await TestCluster.start(6);
    const gw = await cluster.gateway();
    const values = new Map<string, Buffer>();
    for (let i = 0; i < 4; i++) {
      values.set(`mv-${i}`, seededBytes(50_000 + i, 300 + i));
      await gw.put('default', key(`mv-${i}`), values.get(`mv-${i}`)!, { mode: 'sync' });
    }
    const reader = await cluster.gateway({ recordLeaseMs: 0 });
    const epoch = reader.stats().clusterEpoch;
    // Two nodes move (stop, start on a fresh port, re-register); with the old addresses only 4
    // of 6 fragments would be readable, so reads succeed without parity only at the new ones.
    for (const i of [1, 4]) {
      await cluster.stopNode(i);
      await cluster.startNode(cluster.nodes[i]!, 0);
      await cluster.coordinator.registerNode(cluster.nodes[i]!.id, cluster.nodes[i]!.address);
    }
    for (let i = 0; i < 200 && reader.stats().clusterEpoch < epoch + 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reader.stats().clusterEpoch).toBe(epoch + 2);
    const before = reader.stats().badFragments;
    for (const [k, v] of values) expect((await reader.get('default', key(k)))!.equals(v)).toBe(true);
    expect(reader.stats().badFragments).toBe(before);
  });

  test('a late fragment is replaced by parity after the hedging deadline', async () => {
    cluster = await TestCluster.start(6);
    const gw = await cluster.gateway();
    const value = seededBytes(400_000, 31);
    await gw.put('default', key('slow'), value, { mode: 'sync' });
    const rec = (await cluster.coordinator.map.getBlock('default', key('slow')))!;
    const slowAddress = cluster.nodes.find((n) => n.id === rec.fragmentNodes[0])!.address;
    const inner = tcpTransport()({});
    cluster.transports.push(inner);
    // A transport whose peer for one node answers reads only after 20 s (or when aborted).
    const slow: Transport = {
      ...inner,
      name: 'slow',
      listen: inner.listen.bind(inner),
      registerMemory: inner.registerMemory.bind(inner),
      stats: inner.stats.bind(inner),
      close: inner.close.bind(inner),
      async dial(address, options) {
        const peer = await inner.dial(address, options);
        if (address !== slowAddress) return peer;
        return {
          address: peer.address,
          close: () => peer.close(),
          async request(req, opts) {
            await new Promise<void>((resolve, reject) => {
              const t = setTimeout(resolve, 20_000);
              opts?.signal?.addEventListener('abort', () => {
                clearTimeout(t);
                reject(Object.assign(new Error('aborted'), { code: 'TW_TRANSPORT_ABORTED' }));
              });
            });
            return peer.request(req, opts);
          },
        } satisfies Peer;
      },
    };
    const reader = await cluster.gateway({ hedgeMs: 20 }, { transport: slow });
    expect((await reader.get('default', key('slow')))!.equals(value)).toBe(true);
    expect(reader.stats().hedgedReads).toBe(1);
    expect(reader.stats().degradedReads).toBe(1);
  });
});
