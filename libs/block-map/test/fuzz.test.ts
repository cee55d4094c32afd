/**
 * apply never throws on bad bytes, and what it answers (and stores) is the same on every replica:
 * random and mutated command bytes, and random node commands, on a memory and a level store.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Command, decodeCommand, encodeCommand, memoryKvStore } from '../src/index.js';
import { Driver, NODES, block, levelStore, setupCluster } from './helpers.js';

const VALID: Command[] = [
  { op: 'commit-blocks', namespace: 'ns', blocks: [{ ...block('a', 10), layout: { modelId: 'llama', dtypeCode: 3, memoryFormatCode: 1, layers: 32, tokens: 256, kvHeads: 8, headDim: 128 }, ttlMs: 5, pinned: true }, block('b')] },
  { op: 'delete-blocks', namespace: 'ns', keys: [Uint8Array.of(97)] },
  { op: 'purge-blocks', graceMs: 0, refs: [{ namespace: 'ns', key: Uint8Array.of(97), version: 1 }] },
  { op: 'update-namespace', name: 'ns', quotaBytes: 5, tokenHash: Uint8Array.of(1, 2) },
  { op: 'register-node', id: 'sn-9', address: '127.0.0.1:7409', domain: 'host-9', weight: 2 },
  { op: 'set-node-state', id: 'sn-1', state: 'draining', weight: 3 },
];

describe('fuzzed commands', () => {
  it('round-trips every command through its encoding', () => {
    for (const command of VALID) {
      const env = { clientId: 5, seq: 9, nowMs: 123, command };
      expect(decodeCommand(encodeCommand(env))).toEqual(env);
    }
  });

  it('never throws on random or mutated bytes, and both stores agree', async () => {
    const valid = VALID.map((command, i) => encodeCommand({ clientId: 1 + (i % 2), seq: 1 + i, nowMs: 2_000_000, command }));
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([v, muts]) => {
        const out = v.slice();
        for (const [at, b] of muts) out[at % out.length] = b;
        return out;
      }),
      fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([v, n]) => v.subarray(0, n % v.length)),
      fc.constantFrom(...valid),
    );
    const level = await levelStore();
    try {
      const a = await Driver.open(memoryKvStore());
      const b = await Driver.open(level.store);
      await setupCluster(a);
      await setupCluster(b);
      await fc.assert(
        fc.asyncProperty(fc.array(bytes, { maxLength: 10 }), async (cmds) => {
          for (const c of cmds) {
            const ra = await a.applyBytes(c);
            const rb = await b.applyBytes(c);
            expect(rb).toEqual(ra);
            if (!ra.result.ok) expect(ra.result.code).toMatch(/^TW_BLOCKMAP_/);
          }
        }),
        { seed: 0xf022, numRuns: 120 },
      );
      expect(await b.map.stateDigest()).toBe(await a.map.stateDigest());
    } finally {
      await level.close();
    }
  });

  it('random node commands move epochs and PG maps identically on both stores', async () => {
    const id = fc.constantFrom(...NODES, 'sn-6', 'sn-7');
    const command: fc.Arbitrary<Command> = fc.oneof(
      fc.record({ op: fc.constant('register-node' as const), id, address: fc.constantFrom('127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'), domain: fc.constantFrom('host-a', 'host-b', 'host-c', 'host-d'), weight: fc.constantFrom(1, 2) }),
      fc.record({ op: fc.constant('set-node-state' as const), id, state: fc.constantFrom('up' as const, 'down' as const, 'draining' as const, 'out' as const) }),
      fc.record({ op: fc.constant('mark-node-down' as const), id, silentSinceMs: fc.constantFrom(0, 5_000_000) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 25 }), async (cmds) => {
        const level = await levelStore();
        try {
          const a = await Driver.open(memoryKvStore());
          const b = await Driver.open(level.store);
          await setupCluster(a);
          await setupCluster(b);
          let epoch = a.map.clusterMap()!.epoch;
          for (const c of cmds) {
            const bytes = a.bytes(c, 0);
            const ra = await a.applyBytes(bytes);
            const rb = await b.applyBytes(bytes);
            expect(rb).toEqual(ra);
            const cm = a.map.clusterMap()!;
            if (ra.result.ok && ra.result.op === 'node') {
              expect(cm.epoch).toBe(ra.result.changed ? epoch + 1 : epoch);
              const pg = a.map.pgMap();
              expect(pg?.epoch ?? null).toBe(ra.result.pgMapEpoch);
              // A PG map only ever holds nodes that were up when it was built.
              if (pg !== null && pg.epoch === cm.epoch) {
                const up = new Set(cm.nodes.filter((n) => n.state === 'up').map((n) => n.id));
                expect(pg.nodes.every((n) => up.has(n.id))).toBe(true);
              }
            } else {
              expect(cm.epoch).toBe(epoch);
            }
            epoch = cm.epoch;
          }
          expect(b.map.pgMap()?.slots).toEqual(a.map.pgMap()?.slots);
          expect(await b.map.stateDigest()).toBe(await a.map.stateDigest());
        } finally {
          await level.close();
        }
      }),
      { seed: 0x90de, numRuns: 25 },
    );
  });
});
