import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTwError } from '@tw/errors';
import { keyHash64 } from '@tw/block-format';
import { type ClusterMap, type ClusterNode, type PlacementRules, buildPgMap, nextCandidates, normalizeRules, pgOf, pgOfKeyHash, validateClusterMap } from '../src/index.js';
import { refPlaceable } from './reference.js';
import { arbClusterMap, arbRules, node, uniformMap } from './maps.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isTwError(err)) return err.code;
    throw err;
  }
  return undefined;
}

const ec42: PlacementRules = { pgCount: 64, redundancy: { kind: 'ec', k: 4, m: 2 }, failureDomain: 'host' };
const base = uniformMap(8);
const withNode = (patch: Partial<ClusterNode>, index = 0): ClusterMap => ({
  ...base,
  nodes: base.nodes.map((n, i) => (i === index ? ({ ...n, ...patch } as ClusterNode) : n)),
});

describe('validateClusterMap', () => {
  test('a good map passes, with and without rules', () => {
    expect(codeOf(() => validateClusterMap(base))).toBeUndefined();
    expect(codeOf(() => validateClusterMap(base, ec42))).toBeUndefined();
  });

  test.each<[string, ClusterMap, string]>([
    ['negative epoch', { ...base, epoch: -1 }, 'TW_PLACEMENT_BAD_MAP'],
    ['fractional epoch', { ...base, epoch: 1.5 }, 'TW_PLACEMENT_BAD_MAP'],
    ['no levels', { ...base, domainLevels: [] }, 'TW_PLACEMENT_BAD_MAP'],
    ['repeated level', { ...base, domainLevels: ['zone', 'zone', 'host'] }, 'TW_PLACEMENT_BAD_MAP'],
    ['empty id', withNode({ id: '' }), 'TW_PLACEMENT_BAD_NODE_ID'],
    ['id with a slash', withNode({ id: 'a/b' }), 'TW_PLACEMENT_BAD_NODE_ID'],
    ['id too long', withNode({ id: 'x'.repeat(65) }), 'TW_PLACEMENT_BAD_NODE_ID'],
    ['duplicate id', withNode({ id: 'n001', address: 'elsewhere:1' }), 'TW_PLACEMENT_DUPLICATE_NODE'],
    ['duplicate address', withNode({ address: '127.0.0.1:n001' }), 'TW_PLACEMENT_DUPLICATE_NODE'],
    ['empty address', withNode({ address: '' }), 'TW_PLACEMENT_BAD_MAP'],
    ['zero weight', withNode({ weight: 0 }), 'TW_PLACEMENT_BAD_WEIGHT'],
    ['negative weight', withNode({ weight: -1 }), 'TW_PLACEMENT_BAD_WEIGHT'],
    ['NaN weight', withNode({ weight: NaN }), 'TW_PLACEMENT_BAD_WEIGHT'],
    ['infinite weight', withNode({ weight: Infinity }), 'TW_PLACEMENT_BAD_WEIGHT'],
    ['string weight', withNode({ weight: '1' as unknown as number }), 'TW_PLACEMENT_BAD_WEIGHT'],
    ['path too short', withNode({ domain: 'z0/h1' }), 'TW_PLACEMENT_BAD_DOMAIN'],
    ['path too long', withNode({ domain: 'z0/r0/h1/disk2' }), 'TW_PLACEMENT_BAD_DOMAIN'],
    ['empty segment', withNode({ domain: 'z0//h1' }), 'TW_PLACEMENT_BAD_DOMAIN'],
    ['bad segment', withNode({ domain: 'z0/r 0/h1' }), 'TW_PLACEMENT_BAD_DOMAIN'],
    ['unknown state', withNode({ state: 'gone' as ClusterNode['state'] }), 'TW_PLACEMENT_BAD_STATE'],
  ])('%s is refused', (_name, map, code) => {
    expect(codeOf(() => validateClusterMap(map))).toBe(code);
    expect(codeOf(() => buildPgMap(map, ec42))).toBe(code);
  });

  test('an out node may keep the address of its replacement', () => {
    expect(codeOf(() => validateClusterMap(withNode({ address: '127.0.0.1:n001', state: 'out' })))).toBeUndefined();
  });

  test('too few up nodes or domains for k + m under the cap', () => {
    // 5 up nodes for a stripe of 6.
    const five = { ...base, nodes: base.nodes.map((n, i) => (i < 3 ? { ...n, state: 'down' as const } : n)) };
    expect(codeOf(() => validateClusterMap(five, ec42))).toBe('TW_PLACEMENT_TOO_FEW_NODES');
    // 8 nodes on 2 hosts: at most 2 + 2 fragments of a stripe.
    const twoHosts = uniformMap(8, { perHost: 4 });
    expect(codeOf(() => buildPgMap(twoHosts, ec42))).toBe('TW_PLACEMENT_TOO_FEW_DOMAINS');
    // 3 hosts work (2 + 2 + 2); at rack level the same 3 hosts in one rack hold only 2.
    expect(codeOf(() => buildPgMap(uniformMap(12, { perHost: 4 }), ec42))).toBeUndefined();
    expect(codeOf(() => buildPgMap(uniformMap(12, { perHost: 4, hostsPerRack: 3 }), { ...ec42, failureDomain: 'rack' }))).toBe('TW_PLACEMENT_TOO_FEW_DOMAINS');
  });

  test('the placeability check is exact (brute force on small random maps)', () => {
    fc.assert(
      fc.property(arbClusterMap(10), arbRules, (map, rules) => {
        const code = codeOf(() => validateClusterMap(map, rules));
        expect(code === undefined).toBe(refPlaceable(map, rules));
        if (code !== undefined) expect(code).toMatch(/^TW_PLACEMENT_TOO_FEW_(NODES|DOMAINS)$/);
      }),
      { seed: 1313, numRuns: 500 },
    );
  });
});

describe('normalizeRules', () => {
  test('width and default cap per policy', () => {
    expect(normalizeRules(ec42)).toMatchObject({ width: 6, domainCapMax: 2 });
    expect(normalizeRules({ ...ec42, redundancy: { kind: 'ec', k: 8, m: 3 } })).toMatchObject({ width: 11, domainCapMax: 3 });
    expect(normalizeRules({ ...ec42, redundancy: { kind: 'replicate', n: 3 } })).toMatchObject({ width: 3, domainCapMax: 2 });
    expect(normalizeRules({ ...ec42, redundancy: { kind: 'none' } })).toMatchObject({ width: 1, domainCapMax: 1 });
    expect(normalizeRules({ ...ec42, domainCapMax: 1 })).toMatchObject({ width: 6, domainCapMax: 1 });
  });

  test.each<[string, PlacementRules]>([
    ['pgCount 0', { ...ec42, pgCount: 0 }],
    ['pgCount too large', { ...ec42, pgCount: 2 ** 19 }],
    ['k 17', { ...ec42, redundancy: { kind: 'ec', k: 17, m: 2 } }],
    ['m 0', { ...ec42, redundancy: { kind: 'ec', k: 4, m: 0 } }],
    ['m 5', { ...ec42, redundancy: { kind: 'ec', k: 4, m: 5 } }],
    ['replicate 0', { ...ec42, redundancy: { kind: 'replicate', n: 0 } }],
    ['unknown kind', { ...ec42, redundancy: { kind: 'raid5' } as unknown as PlacementRules['redundancy'] }],
    ['cap above m (would lose stripes with a domain)', { ...ec42, domainCapMax: 3 }],
    ['cap 0', { ...ec42, domainCapMax: 0 }],
    ['bad level name', { ...ec42, failureDomain: 'Host!' }],
  ])('%s is refused', (_name, rules) => {
    expect(codeOf(() => normalizeRules(rules))).toBe('TW_PLACEMENT_BAD_RULES');
  });

  test('a level the map does not have is refused at build', () => {
    expect(codeOf(() => buildPgMap(base, { ...ec42, failureDomain: 'row' }))).toBe('TW_PLACEMENT_BAD_RULES');
  });
});

describe('pgOf', () => {
  test('is keyHash64(namespace, key) mod pgCount, in range', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/), fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.integer({ min: 1, max: 1 << 18 }), (ns, key, pgCount) => {
        const pg = pgOf(ns, key, pgCount);
        expect(pg).toBe(Number(keyHash64(ns, key) % BigInt(pgCount)));
        expect(pg).toBe(pgOfKeyHash(keyHash64(ns, key), pgCount));
        expect(Number.isInteger(pg) && pg >= 0 && pg < pgCount).toBe(true);
      }),
      { seed: 1414, numRuns: 500 },
    );
  });

  test('namespaces do not share PGs by construction: ("ab","c") and ("a","bc") differ', () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(pgOf('ab', enc('c'), 1 << 18)).not.toBe(pgOf('a', enc('bc'), 1 << 18));
  });

  test('spreads keys evenly over PGs (chi-square over 64 PGs)', () => {
    const pgCount = 64;
    const counts = new Array<number>(pgCount).fill(0);
    const n = 64_000;
    for (let i = 0; i < n; i++) counts[pgOf('default', new TextEncoder().encode(`model@0@${i.toString(16)}`), pgCount)]!++;
    const expected = n / pgCount;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 63 degrees of freedom: the 99.99th percentile is about 117.
    expect(chi2).toBeLessThan(117);
  });

  test('refuses invalid keys, namespaces and PG counts with coded errors', () => {
    expect(codeOf(() => pgOf('default', new Uint8Array(0), 64))).toBe('TW_KEY_EMPTY');
    expect(codeOf(() => pgOf('default', new Uint8Array(513), 64))).toBe('TW_KEY_TOO_LONG');
    expect(codeOf(() => pgOf('Bad NS', new Uint8Array(1), 64))).toBe('TW_NAMESPACE_INVALID');
    expect(codeOf(() => pgOfKeyHash(1n, 0))).toBe('TW_PLACEMENT_BAD_PG');
  });
});

describe('nextCandidates', () => {
  test('ranks the nodes outside the PG, within the cap, and honours exclude and limit', () => {
    const map = uniformMap(10, { perHost: 2 });
    const m = buildPgMap(map, { pgCount: 16, redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host' });
    const all = nextCandidates(m, 5, 1, { limit: 100 });
    const inPg = new Set(m.nodes.filter((_, i) => [0, 1, 2].some((s) => m.slots[5 * 3 + s] === i)).map((n) => n.id));
    for (const id of all) expect(inPg.has(id)).toBe(false);
    // cap 1 per host: the hosts of slots 0 and 2 are off limits for slot 1.
    const hostOf = (id: string): string => map.nodes.find((n) => n.id === id)!.domain;
    const otherHosts = new Set([0, 2].map((s) => hostOf(m.nodes[m.slots[5 * 3 + s]!]!.id)));
    for (const id of all) expect(otherHosts.has(hostOf(id))).toBe(false);
    expect(nextCandidates(m, 5, 1, { limit: 2 })).toEqual(all.slice(0, 2));
    expect(nextCandidates(m, 5, 1, { limit: 100, exclude: new Set([all[0]!]) })).toEqual(all.slice(1));
    expect(codeOf(() => nextCandidates(m, 16, 0))).toBe('TW_PLACEMENT_BAD_PG');
    expect(codeOf(() => nextCandidates(m, 0, 3))).toBe('TW_PLACEMENT_BAD_PG');
  });

  test('nodes with state other than up never receive slots', () => {
    const map: ClusterMap = {
      epoch: 3,
      domainLevels: ['host'],
      nodes: [node('a', 'h1'), node('b', 'h2', 1, 'down'), node('c', 'h3', 1, 'draining'), node('d', 'h4', 1, 'out'), node('e', 'h5'), node('f', 'h6')],
    };
    const m = buildPgMap(map, { pgCount: 32, redundancy: { kind: 'replicate', n: 3 }, failureDomain: 'host' });
    expect(m.nodes.map((n) => n.id)).toEqual(['a', 'e', 'f']);
    expect(m.epoch).toBe(3);
  });
});
