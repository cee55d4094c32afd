/**
 * Safety of the sweep against racing commits, over random histories (seeded): fragments written
 * at random times, committed in time, late or never, commits and clock jumps landing while a
 * pass is in flight (between its listing and its checks). The liveness answers come from the
 * real block map; the store is an in-memory stand-in with the extent store's seq semantics.
 *
 * Property: a fragment whose commit completed within the grace period of its write is never
 * deleted; once everything is older than the grace period, two passes leave exactly the
 * committed fragments.
 */
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { encodeCommand, memoryKvStore, openBlockMap, type BlockMap, type Command } from '@tw/block-map';
import { encodeFragmentId, type FragmentId } from '@tw/fragment-protocol';
import { FragmentGc, type GcStore } from '../src/fragment-gc.js';

const GRACE_MS = 10_000;

class MemoryStore implements GcStore {
  readonly entries = new Map<string, { id: Buffer; seq: number; sizeBytes: number }>();
  lastSeq = 0;
  put(id: Buffer): void {
    this.entries.set(id.toString('hex'), { id, seq: ++this.lastSeq, sizeBytes: 10 });
  }
  async list(options: { after?: Uint8Array; limit: number }) {
    const sorted = [...this.entries.values()].sort((a, b) => Buffer.compare(a.id, b.id));
    const from = options.after === undefined ? sorted : sorted.filter((e) => Buffer.compare(e.id, Buffer.from(options.after!)) > 0);
    const entries = from.slice(0, options.limit);
    return entries.length === options.limit ? { entries, next: entries[entries.length - 1]!.id } : { entries };
  }
  async delete(id: Uint8Array, options: { ifSeq: number }) {
    const k = Buffer.from(id).toString('hex');
    if (this.entries.get(k)?.seq !== options.ifSeq) return false;
    this.lastSeq++;
    return this.entries.delete(k);
  }
}

type Step =
  | { t: 'write'; key: number }
  | { t: 'commit'; key: number; racing: boolean }
  | { t: 'advance'; ms: number }
  | { t: 'pass'; slowMs: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constant('write' as const), key: fc.integer({ min: 0, max: 11 }) }),
  fc.record({ t: fc.constant('commit' as const), key: fc.integer({ min: 0, max: 11 }), racing: fc.boolean() }),
  fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: GRACE_MS }) }),
  fc.record({ t: fc.constant('pass' as const), slowMs: fc.integer({ min: 0, max: GRACE_MS }) }),
);

async function setup(): Promise<{ map: BlockMap; run: (c: Command, nowMs: number) => Promise<void> }> {
  const map = await openBlockMap(memoryKvStore());
  let index = 0;
  const run = async (command: Command, nowMs: number): Promise<void> => {
    const r = (await map.apply(++index, encodeCommand({ clientId: 0, seq: 0, nowMs, command }))).result;
    if (!r.ok) throw new Error(`${command.op}: ${r.code}`);
  };
  const redundancy = { kind: 'ec' as const, k: 2, m: 1 };
  await run({ op: 'init-cluster', rules: { pgCount: 8, domainLevels: ['host'], redundancy, failureDomain: 'host', domainCapMax: 0 } }, 1);
  for (const [i, id] of ['sn-a', 'sn-b', 'sn-c'].entries()) await run({ op: 'register-node', id, address: `127.0.0.1:${7000 + i}`, domain: `h-${id}`, weight: 1 }, 1);
  await run({ op: 'create-namespace', name: 'ns', quotaBytes: null, defaultTtlMs: 0, redundancy, tokenHash: new Uint8Array(0) }, 1);
  return { map, run };
}

test('a sweep racing commits never deletes a fragment committed within the grace period, and collects the rest', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
      const { map, run } = await setup();
      const store = new MemoryStore();
      const clock = { now: 1_000_000 };
      // Per key: its fragments on sn-a (indexes 0 and 2), write time, commit time.
      const written = new Map<number, { ids: FragmentId[]; writtenAt: number; committedAt?: number }>();
      const racing: number[] = [];
      let passDelayMs = 0;
      const commit = async (key: number): Promise<void> => {
        const w = written.get(key);
        if (w === undefined || w.committedAt !== undefined) return;
        await run({ op: 'commit-blocks', namespace: 'ns', blocks: [{ key: Buffer.from(`k${key}`), sizeBytes: 20, checksum: 1n, fragmentNodes: ['sn-a', 'sn-b', 'sn-a'], writeVersion: BigInt(1000 + key) }] }, clock.now);
        w.committedAt = clock.now;
      };
      const gc = new FragmentGc(
        { nodeId: 'sn-a', graceMs: GRACE_MS, intervalMs: 1_000_000, batchSize: 3, checksPerSecondMax: 1_000_000 },
        {
          store,
          identity: { load: () => undefined, save: () => undefined },
          nowMs: () => clock.now,
          sleep: async () => undefined,
          logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
          check: async (frags) => {
            // Whatever raced the pass lands now: commits, and time passing (a slow pass).
            for (const k of racing.splice(0)) await commit(k);
            clock.now += passDelayMs;
            passDelayMs = 0;
            const res = await map.checkFragments('sn-a', frags);
            return { liveness: res.liveness, nodeRegisteredAtMs: res.nodeRegisteredAtMs };
          },
        },
      );
      for (const s of steps) {
        if (s.t === 'write') {
          if (written.has(s.key)) continue;
          const ids = [0, 2].map((index) => ({ namespace: 'ns', key: Buffer.from(`k${s.key}`), version: BigInt(1000 + s.key), index }));
          for (const id of ids) store.put(encodeFragmentId(id));
          written.set(s.key, { ids, writtenAt: clock.now });
        } else if (s.t === 'commit') {
          if (s.racing) racing.push(s.key);
          else await commit(s.key);
        } else if (s.t === 'advance') {
          clock.now += s.ms;
        } else {
          passDelayMs = s.slowMs;
          await gc.runOnce();
          for (const k of racing.splice(0)) await commit(k); // the pass had no batch to land them in
        }
        // Safety, after every step.
        for (const w of written.values()) {
          if (w.committedAt === undefined || w.committedAt - w.writtenAt > GRACE_MS) continue;
          for (const id of w.ids) expect(store.entries.has(encodeFragmentId(id).toString('hex'))).toBe(true);
        }
      }
      // Liveness: everything old, two passes (the first samples, the second acts).
      clock.now += GRACE_MS + 1;
      await gc.runOnce();
      clock.now += GRACE_MS + 1;
      const last = await gc.runOnce();
      expect(last.aborted).toBeUndefined();
      const left = new Set(store.entries.keys());
      for (const w of written.values()) {
        for (const id of w.ids) expect(left.has(encodeFragmentId(id).toString('hex'))).toBe(w.committedAt !== undefined);
      }
    }),
    { seed: 0x6c5eed, numRuns: 150 },
  );
});
