import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type ClusterMap, type PgMap, type PlacementRules, buildPgMap, nextCandidates, pgMapMoves, pgNodes, rebuildPgMap, slotCounts } from '../src/index.js';
import { refPlaceable, refRebuild } from './reference.js';
import { arbChange, arbClusterMap, arbRules, asLists, node, uniformMap, weightsOf, withNodes } from './maps.js';
import { checkPgMap } from './check.js';

/** A random placeable (map, rules, change) triple. */
const arbScenario = fc
  .tuple(arbClusterMap(), arbRules)
  .filter(([map, rules]) => refPlaceable(map, rules))
  .chain(([map, rules]) => fc.tuple(fc.constant(map), fc.constant(rules), arbChange(map)))
  .filter(([, rules, next]) => refPlaceable(next, rules));

describe('rebuildPgMap against the naive reference', () => {
  test('one random change', () => {
    fc.assert(
      fc.property(arbScenario, ([map, rules, next]) => {
        const prev = buildPgMap(map, rules);
        const got = rebuildPgMap(prev, next);
        expect(asLists(got)).toEqual(refRebuild(asLists(prev), weightsOf(prev), next, rules));
        checkPgMap(got, next);
      }),
      { seed: 505, numRuns: 300 },
    );
  });

  test('two changes in a row (the second starts from a rebuilt map, not a fresh build)', () => {
    fc.assert(
      fc.property(
        arbScenario.chain(([map, rules, next]) => fc.tuple(fc.constant(map), fc.constant(rules), fc.constant(next), arbChange(next))).filter(([, rules, , last]) => refPlaceable(last, rules)),
        ([map, rules, next, last]) => {
          const mid = rebuildPgMap(buildPgMap(map, rules), next);
          const got = rebuildPgMap(mid, last);
          expect(asLists(got)).toEqual(refRebuild(asLists(mid), weightsOf(mid), last, rules));
          checkPgMap(got, last);
        },
      ),
      { seed: 606, numRuns: 150 },
    );
  });
});

describe('rebuildPgMap guarantees', () => {
  test('a fresh build is a fixed point, and rebuilding is idempotent', () => {
    fc.assert(
      fc.property(arbScenario, ([map, rules, next]) => {
        const built = buildPgMap(map, rules);
        expect(asLists(rebuildPgMap(built, map))).toEqual(asLists(built));
        const once = rebuildPgMap(built, next);
        expect(asLists(rebuildPgMap(once, next))).toEqual(asLists(once));
      }),
      { seed: 707, numRuns: 200 },
    );
  });

  test('nodes leaving move exactly their slots', () => {
    fc.assert(
      fc.property(
        arbClusterMap(),
        arbRules,
        fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
        fc.constantFrom('down' as const, 'draining' as const, 'out' as const, 'removed' as const),
        (map, rules, picks, how) => {
          fc.pre(refPlaceable(map, rules));
          const up = map.nodes.filter((n) => n.state === 'up');
          const leaving = new Set(picks.map((p) => up[p % up.length]!.id));
          const nodes = how === 'removed' ? map.nodes.filter((n) => !leaving.has(n.id)) : map.nodes.map((n) => (leaving.has(n.id) ? { ...n, state: how } : n));
          const next = withNodes(map, nodes);
          fc.pre(refPlaceable(next, rules));
          const prev = buildPgMap(map, rules);
          const got = rebuildPgMap(prev, next);
          const moves = pgMapMoves(prev, got);
          let slotsOnLeaving = 0;
          for (const [id, c] of slotCounts(prev)) if (leaving.has(id)) slotsOnLeaving += c;
          expect(moves.length).toBe(slotsOnLeaving);
          for (const mv of moves) expect(leaving.has(mv.from)).toBe(true);
        },
      ),
      { seed: 808, numRuns: 300 },
    );
  });

  test('nodes joining take slots and nothing else moves', () => {
    fc.assert(
      fc.property(arbClusterMap(), arbRules, fc.integer({ min: 1, max: 3 }), fc.nat(), (map, rules, count, salt) => {
        fc.pre(refPlaceable(map, rules));
        const added = Array.from({ length: count }, (_, i) => node(`new-${salt}-${i}`, `z${i % 3}/r${salt % 3}/h${(salt + i) % 6}`, 1 + (i % 2)));
        const next = withNodes(map, [...map.nodes, ...added]);
        const prev = buildPgMap(map, rules);
        const got = rebuildPgMap(prev, next);
        const addedIds = new Set(added.map((n) => n.id));
        for (const mv of pgMapMoves(prev, got)) expect(addedIds.has(mv.to)).toBe(true);
      }),
      { seed: 909, numRuns: 300 },
    );
  });

  test('a heavier node only gains slots, a lighter one only loses them', () => {
    const movedTotal = { lighter: 0, heavier: 0 };
    fc.assert(
      fc.property(arbClusterMap(), arbRules, fc.nat(), fc.boolean(), (map, rules, pick, heavier) => {
        fc.pre(refPlaceable(map, rules));
        const up = map.nodes.filter((n) => n.state === 'up');
        const target = up[pick % up.length]!;
        const next = withNodes(
          map,
          map.nodes.map((n) => (n.id === target.id ? { ...n, weight: heavier ? n.weight * 2 : n.weight / 2 } : n)),
        );
        const prev = buildPgMap(map, rules);
        const moves = pgMapMoves(prev, rebuildPgMap(prev, next));
        for (const mv of moves) expect(heavier ? mv.to : mv.from).toBe(target.id);
        movedTotal[heavier ? 'heavier' : 'lighter'] += moves.length;
      }),
      { seed: 1010, numRuns: 300 },
    );
    // And weight changes do move data (a rebuild that ignored them would pass the loop above).
    expect(movedTotal.lighter).toBeGreaterThan(0);
    expect(movedTotal.heavier).toBeGreaterThan(0);
  });

  test('agreement with a fresh build: one node out / one node in, PG by PG', () => {
    let agreeing = 0;
    let cascades = 0;
    fc.assert(
      fc.property(arbClusterMap(), arbRules, fc.nat(), fc.boolean(), (map, rules, pick, add) => {
        fc.pre(refPlaceable(map, rules));
        const up = map.nodes.filter((n) => n.state === 'up');
        const changed = add ? node(`joiner-${pick}`, `z${pick % 3}/r${(pick >> 2) % 3}/h${(pick >> 4) % 6}`, 2) : up[pick % up.length]!;
        const next = withNodes(map, add ? [...map.nodes, changed] : map.nodes.filter((n) => n.id !== changed.id));
        fc.pre(refPlaceable(next, rules));
        const prev = buildPgMap(map, rules);
        const got = rebuildPgMap(prev, next);
        const fresh = buildPgMap(next, rules);
        for (let pg = 0; pg < rules.pgCount; pg++) {
          const p = pgNodes(prev, pg);
          const g = pgNodes(got, pg);
          const f = pgNodes(fresh, pg);
          // Slots the change may move: the leaving node's, or the one slot the joiner takes.
          const allowed = (s: number): boolean => (add ? f[s] === changed.id : p[s] === changed.id);
          const freshMovesOnlyAllowed = p.every((id, s) => id === f[s] || allowed(s));
          if (freshMovesOnlyAllowed) {
            expect(g, `pg ${pg}`).toEqual(f);
            agreeing++;
          } else {
            cascades++;
          }
          const gMoved = p.map((id, s) => (id === g[s] ? -1 : s)).filter((s) => s >= 0);
          for (const s of gMoved) expect(add ? g[s] : p[s]).toBe(changed.id);
          if (add) expect(gMoved.length).toBeLessThanOrEqual(1);
        }
      }),
      { seed: 1111, numRuns: 300 },
    );
    // Both branches ran: most PGs agree with the fresh build, and some cascades were seen.
    expect(agreeing).toBeGreaterThan(10 * cascades);
    expect(cascades).toBeGreaterThan(0);
  });

  test('a domain change that breaks the cap moves the later slot of the two, and only it', () => {
    fc.assert(
      fc.property(arbClusterMap(), arbRules, fc.nat(), (map, rules0, pick) => {
        const rules = { ...rules0, failureDomain: 'host', domainCapMax: 1 };
        fc.pre(refPlaceable(map, rules));
        const prev = buildPgMap(map, rules);
        fc.pre(prev.rules.width >= 2);
        const pg = pick % rules.pgCount;
        const [first, second] = pgNodes(prev, pg);
        const firstDomain = map.nodes.find((n) => n.id === first)!.domain;
        const next = withNodes(map, map.nodes.map((n) => (n.id === second ? { ...n, domain: firstDomain } : n)));
        expect(first !== undefined && second !== undefined).toBe(true);
        fc.pre(refPlaceable(next, rules));
        const got = rebuildPgMap(prev, next);
        checkPgMap(got, next);
        const g = pgNodes(got, pg);
        expect(g[0]).toBe(first);
        expect(g[1]).not.toBe(second);
        // Elsewhere too, only PGs holding `second` and another node of its new host lose a slot:
        // the later of the two.
        for (const mv of pgMapMoves(prev, got)) {
          const p = pgNodes(prev, mv.pg);
          const s2 = p.indexOf(second!);
          const partner = p.findIndex((id, j) => j !== s2 && next.nodes.find((n) => n.id === id)!.domain === firstDomain);
          expect(s2).toBeGreaterThanOrEqual(0);
          expect(partner).toBeGreaterThanOrEqual(0);
          expect(mv.slot).toBe(Math.max(s2, partner));
        }
      }),
      { seed: 1515, numRuns: 200 },
    );
  });

  test('nextCandidates()[0] is where a slot goes when its node alone leaves', () => {
    fc.assert(
      fc.property(arbClusterMap(), arbRules, fc.nat(), (map, rules, pick) => {
        fc.pre(refPlaceable(map, rules));
        const prev = buildPgMap(map, rules);
        const up = map.nodes.filter((n) => n.state === 'up');
        const leaving = up[pick % up.length]!.id;
        const next = withNodes(map, map.nodes.filter((n) => n.id !== leaving));
        fc.pre(refPlaceable(next, rules));
        const got = rebuildPgMap(prev, next);
        for (const mv of pgMapMoves(prev, got)) {
          const candidates = nextCandidates(prev, mv.pg, mv.slot, { limit: 3 });
          expect(candidates[0]).toBe(mv.to);
          expect(candidates).not.toContain(leaving);
        }
      }),
      { seed: 1212, numRuns: 200 },
    );
  });
});

test('a cluster map older than the PG map is refused', () => {
  const map = uniformMap(8, { epoch: 5 });
  const prev = buildPgMap(map, { pgCount: 8, redundancy: { kind: 'ec', k: 2, m: 1 }, failureDomain: 'host' });
  expect(() => rebuildPgMap(prev, { ...map, epoch: 4 })).toThrowError(expect.objectContaining({ code: 'TW_PLACEMENT_BAD_MAP' }));
  expect(rebuildPgMap(prev, map).epoch).toBe(5);
});

describe('movement on a 12-node cluster (4096 PGs x ec:4+2, 2 nodes per host, cap 2 per host)', () => {
  const rules: PlacementRules = { pgCount: 4096, redundancy: { kind: 'ec', k: 4, m: 2 }, failureDomain: 'host' };
  const totalSlots = 4096 * 6;
  const twelve = uniformMap(12, { perHost: 2 });
  let prev: PgMap | undefined;
  const built = (): PgMap => (prev ??= buildPgMap(twelve, rules));

  test('adding a 13th node moves at most 1.25x the ideal share (1/13), all of it onto the new node', () => {
    const next: ClusterMap = withNodes(twelve, [...twelve.nodes, node('n012', 'z0/r9/h99')]);
    const moves = pgMapMoves(built(), rebuildPgMap(built(), next));
    const ideal = totalSlots / 13;
    expect(moves.length).toBeLessThanOrEqual(1.25 * ideal);
    // And the new node does get its share: a rebuild that moved nothing would pass the bound above.
    expect(moves.length).toBeGreaterThanOrEqual(0.8 * ideal);
    for (const mv of moves) expect(mv.to).toBe('n012');
  });

  test('removing one of 12 moves exactly its slots, spread over the other 11', () => {
    const next: ClusterMap = withNodes(twelve, twelve.nodes.filter((n) => n.id !== 'n005'));
    const got = rebuildPgMap(built(), next);
    const moves = pgMapMoves(built(), got);
    expect(moves.length).toBe(slotCounts(built()).get('n005'));
    const receivers = new Map<string, number>();
    for (const mv of moves) {
      expect(mv.from).toBe('n005');
      receivers.set(mv.to, (receivers.get(mv.to) ?? 0) + 1);
    }
    expect(receivers.size).toBe(11);
    checkPgMap(got, next);
  });
});
