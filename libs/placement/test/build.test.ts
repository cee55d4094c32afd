import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTwError } from '@tw/errors';
import { type ClusterMap, type PlacementRules, buildPgMap, pgNodes, slotCounts } from '../src/index.js';
import { checkPgMap } from './check.js';
import { drawExp, nodeHash64, slotHash } from '../src/hash.js';
import { refBuild, refCap, refExp, refPlaceable, refWidth } from './reference.js';
import { arbClusterMap, arbRules, asLists, node, shuffled, uniformMap } from './maps.js';

describe('hash', () => {
  test('the 32-bit-halves draw equals the BigInt reference', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: (1 << 18) - 1 }), fc.integer({ min: 0, max: 19 }), fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), (pg, slot, id) => {
        const sh = new Uint32Array(2);
        slotHash(pg, slot, sh);
        const h = nodeHash64(id);
        const e = drawExp(sh[0]!, sh[1]!, Number(h >> 32n), Number(h & 0xffffffffn));
        expect(e).toBe(refExp(pg, slot, id));
      }),
      { seed: 101, numRuns: 2000 },
    );
  });

  test('draws are Exp(1): mean near 1, and slot 0 winners follow the weights', () => {
    const sh = new Uint32Array(2);
    const h = nodeHash64('n1');
    let sum = 0;
    const runs = 20_000;
    for (let pg = 0; pg < runs; pg++) {
      slotHash(pg, 3, sh);
      sum += drawExp(sh[0]!, sh[1]!, Number(h >> 32n), Number(h & 0xffffffffn));
    }
    // Exp(1) has mean 1 and variance 1: 6 standard errors of 1/sqrt(runs).
    expect(Math.abs(sum / runs - 1)).toBeLessThan(6 / Math.sqrt(runs));
  });
});

describe('buildPgMap', () => {
  test('matches the naive reference slot for slot on random cluster maps and rules', () => {
    fc.assert(
      fc.property(arbClusterMap(), arbRules, (map, rules) => {
        const placeable = refPlaceable(map, rules);
        if (!placeable) {
          let code: string | undefined;
          try {
            buildPgMap(map, rules);
          } catch (err) {
            if (isTwError(err)) code = err.code;
          }
          expect(code).toMatch(/^TW_PLACEMENT_TOO_FEW_(NODES|DOMAINS)$/);
          return;
        }
        const m = buildPgMap(map, rules);
        expect(asLists(m)).toEqual(refBuild(map, rules));
      }),
      { seed: 202, numRuns: 300 },
    );
  });

  test('caps hold in every PG, with every node distinct and up', () => {
    fc.assert(
      fc.property(arbClusterMap(30), arbRules, (map, rules) => {
        fc.pre(refPlaceable(map, rules));
        const m = buildPgMap(map, rules);
        expect(m.rules.width).toBe(refWidth(rules));
        expect(m.rules.domainCapMax).toBe(refCap(rules));
        checkPgMap(m, map);
      }),
      { seed: 303, numRuns: 300 },
    );
  });

  test('caps bind where they must: 3 hosts of 4 nodes, ec:4+2 at host level puts exactly 2 per host', () => {
    const map = uniformMap(12, { perHost: 4 });
    const m = buildPgMap(map, { pgCount: 256, redundancy: { kind: 'ec', k: 4, m: 2 }, failureDomain: 'host' });
    checkPgMap(m, map);
    for (let pg = 0; pg < 256; pg++) {
      const hosts = pgNodes(m, pg).map((id) => map.nodes.find((n) => n.id === id)!.domain);
      expect(new Set(hosts).size).toBe(3);
    }
  });

  test('deterministic: shuffling the nodes of the input gives the same PG map', () => {
    fc.assert(
      fc.property(arbClusterMap(), arbRules, fc.integer(), (map, rules, seed) => {
        fc.pre(refPlaceable(map, rules));
        const a = buildPgMap(map, rules);
        const b = buildPgMap({ ...map, nodes: shuffled(map.nodes, seed) }, rules);
        expect(asLists(b)).toEqual(asLists(a));
        expect(b.nodes).toEqual(a.nodes);
      }),
      { seed: 404, numRuns: 150 },
    );
  });

  test('a known map gives a known placement (changing the hash or the order is a format change)', () => {
    const m = buildPgMap(uniformMap(8), { pgCount: 4, redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host' });
    expect(asLists(m)).toEqual(refBuild(uniformMap(8), { pgCount: 4, redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host' }));
    expect(asLists(m)).toEqual([["n002", "n007", "n001"], ["n005", "n000", "n004"], ["n002", "n004", "n003"], ["n006", "n000", "n004"]]);
  });
});

describe('load follows weight (100 nodes)', () => {
  // 65536 PGs x 6 slots = 393,216 slots, about 3,900 per node: the binomial noise is about 1.6 %
  // of a node's share, so +-10 % is met with a wide margin by a correct build and broken by any
  // systematic bias. (4096 PGs give about 245 slots per node and 6 % noise: too few to test 10 %.)
  const rules: PlacementRules = { pgCount: 65_536, redundancy: { kind: 'ec', k: 4, m: 2 }, failureDomain: 'host' };

  function maxRelativeError(map: ClusterMap): number {
    const m = buildPgMap(map, rules);
    const counts = slotCounts(m);
    const totalWeight = map.nodes.reduce((s, n) => s + n.weight, 0);
    const totalSlots = rules.pgCount * 6;
    let worst = 0;
    for (const n of map.nodes) {
      const expected = (totalSlots * n.weight) / totalWeight;
      worst = Math.max(worst, Math.abs(counts.get(n.id)! - expected) / expected);
    }
    return worst;
  }

  test('equal weights: every node within 10 % of its share', () => {
    // 2 nodes per host, 5 hosts per rack.
    expect(maxRelativeError(uniformMap(100, { perHost: 2, hostsPerRack: 5 }))).toBeLessThan(0.1);
  });

  test('heterogeneous weights (1, 2, 3 in turn): every node within 10 % of its share', () => {
    expect(maxRelativeError(uniformMap(100, { perHost: 2, hostsPerRack: 5, weight: (i) => 1 + (i % 3) }))).toBeLessThan(0.1);
  });
});

describe('odd inputs', () => {
  test('ties and tiny maps: a PG as wide as the cluster uses every node once', () => {
    const map: ClusterMap = { epoch: 0, domainLevels: ['host'], nodes: [node('b', 'h1'), node('a', 'h2'), node('c', 'h3')] };
    const m = buildPgMap(map, { pgCount: 10, redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host' });
    for (let pg = 0; pg < 10; pg++) expect(pgNodes(m, pg).sort()).toEqual(['a', 'b', 'c']);
  });
});
