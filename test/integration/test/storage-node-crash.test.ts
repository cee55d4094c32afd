/**
 * Issue 3, crash test: a storage node process takes a stream of 1,000 fragments of random sizes
 * (seeded), is SIGKILLed mid-stream, and restarts. Every acknowledged fragment must read back
 * byte-identical; a fragment that was never acknowledged is either absent or whole, never half.
 * 20 seeds; a failure names its seed (`CRASH_SEEDS=7` replays seed 7 only).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { FragmentClient, encodeKeyPrefix } from '@tw/fragment-protocol';
import { tcpTransport } from '@tw/transport-tcp';
import { fillBytes, killAll, makeFragment, removeTempDirs, rng, startStorageNodeProcess, tempDir } from '../src/index.js';

const SEEDS = process.env['CRASH_SEEDS'] ? process.env['CRASH_SEEDS'].split(',').map(Number) : Array.from({ length: 20 }, (_, i) => 1000 + i);
const FRAGMENTS = 1000;
const INFLIGHT = 8;

afterEach(async () => {
  await killAll();
});
afterAll(() => removeTempDirs());

describe('storage node survives SIGKILL mid-stream', () => {
  test.each(SEEDS)('seed %i', async (seed) => {
    const next = rng(seed);
    const dir = tempDir(`crash-${seed}`);
    // Fragments from 64 KiB up are streamed (written to the extent while they arrive): the kill
    // also lands in the middle of those, leaving records with a header and no trailer.
    const config = join(tempDir(`crash-${seed}-config`), 'node.json');
    writeFileSync(config, JSON.stringify({ dataDir: dir, streamedPutBytesMin: 64 * 1024 }));
    const sizeOf = (): number => {
      // Log-uniform from 1 byte to 256 KiB: many small, some large.
      return Math.max(1, Math.floor(2 ** (next() * 18)));
    };
    const plan = Array.from({ length: FRAGMENTS }, (_, i) => ({ i, size: sizeOf(), dataSeed: (seed * 7919 + i) >>> 0 }));
    const killAfterAcks = 50 + Math.floor(next() * (FRAGMENTS - 100));
    const frag = (i: number) => {
      const p = plan[i]!;
      return makeFragment('crash', `seed-${seed}-frag-${i}`, BigInt(i + 1), fillBytes(Buffer.allocUnsafe(p.size), p.dataSeed));
    };

    const node = await startStorageNodeProcess(dir, ['--config', config]);
    const transport = tcpTransport()({});
    const acked = new Set<number>();
    const sent = new Set<number>();
    try {
      const peer = await transport.dial(node.dataAddress);
      const client = new FragmentClient(peer);
      let cursor = 0;
      let killed = false;
      const worker = async (): Promise<void> => {
        while (cursor < FRAGMENTS) {
          const i = cursor++;
          const f = frag(i);
          sent.add(i);
          try {
            await client.put(f.id, f.header, f.bytes);
            acked.add(i);
            if (!killed && acked.size >= killAfterAcks) {
              killed = true;
              node.child.kill('SIGKILL');
            }
          } catch (err) {
            // After the kill, puts fail with transport codes; before it, nothing may fail.
            if (!killed) throw new Error(`seed ${seed}: put ${i} failed before the kill`, { cause: err });
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: INFLIGHT }, worker));
      expect(killed, `seed ${seed}: the node was never killed`).toBe(true);
      await node.child.exited;
    } finally {
      await transport.close();
    }

    // Restart on the same data folder and check.
    const again = await startStorageNodeProcess(dir, ['--config', config]);
    const transport2 = tcpTransport()({});
    try {
      const client = new FragmentClient(await transport2.dial(again.dataAddress));
      for (const i of acked) {
        const f = frag(i);
        const got = await client.get(f.id);
        if (got === undefined) throw new Error(`seed ${seed}: acknowledged fragment ${i} (${plan[i]!.size} bytes) is missing after restart`);
        if (!got.bytes.equals(f.bytes)) throw new Error(`seed ${seed}: acknowledged fragment ${i} came back with different bytes`);
      }
      let whole = 0;
      for (const i of sent) {
        if (acked.has(i)) continue;
        const f = frag(i);
        const got = await client.get(f.id); // verifies the checksum: a torn record would throw
        if (got !== undefined) {
          expect(got.bytes.equals(f.bytes), `seed ${seed}: unacknowledged fragment ${i} is visible but not whole`).toBe(true);
          whole++;
        }
      }
      // Nothing else appeared: the listing holds only fragments we sent, at their full size.
      let listed = 0;
      let after: Buffer | undefined;
      for (let page = 0; page < 100; page++) {
        const res = await client.list(encodeKeyPrefix('crash', Buffer.from('s')).subarray(0, 7), { limit: 1000, ...(after ? { after } : {}) });
        listed += res.entries.length;
        if (!res.next) break;
        after = res.next;
      }
      expect(listed).toBe(acked.size + whole);
    } finally {
      await transport2.close();
      again.child.kill('SIGTERM');
      expect(await again.child.exited).toBe(0);
    }
  });
});
