import fc from 'fast-check';
import { expect, test } from 'vitest';
import { isTwError } from '@tw/errors';
import { buildPgMap, pgMapFromJson, pgMapToJson, rebuildPgMap } from '../src/index.js';
import { refPlaceable } from './reference.js';
import { arbChange, arbClusterMap, arbRules, asLists } from './maps.js';

test('a PG map survives JSON, and a rebuild from the copy equals one from the original', () => {
  fc.assert(
    fc.property(
      fc
        .tuple(arbClusterMap(), arbRules)
        .filter(([map, rules]) => refPlaceable(map, rules))
        .chain(([map, rules]) => fc.tuple(fc.constant(map), fc.constant(rules), arbChange(map))),
      ([map, rules, next]) => {
        const m = buildPgMap(map, rules);
        const copy = pgMapFromJson(JSON.parse(JSON.stringify(pgMapToJson(m))));
        expect(asLists(copy)).toEqual(asLists(m));
        expect(copy.rules).toEqual(m.rules);
        expect(copy.nodes).toEqual(m.nodes);
        if (refPlaceable(next, rules)) expect(asLists(rebuildPgMap(copy, next))).toEqual(asLists(rebuildPgMap(m, next)));
      },
    ),
    { seed: 1616, numRuns: 150 },
  );
});

test('a corrupted PG map is refused with TW_PLACEMENT_BAD_PG_MAP, never another error', () => {
  const m = buildPgMap(
    { epoch: 2, domainLevels: ['rack', 'host'], nodes: Array.from({ length: 9 }, (_, i) => ({ id: `n${i}`, address: `a${i}`, domain: `r${i % 4}/h${i}`, weight: 1 + (i % 2), state: 'up' as const })) },
    { pgCount: 16, redundancy: { kind: 'ec', k: 3, m: 1 }, failureDomain: 'rack' },
  );
  const good = pgMapToJson(m);
  const corruptions: Array<(j: Record<string, unknown>) => unknown> = [
    (j) => ({ ...j, format: 2 }),
    (j) => ({ ...j, slots: (j['slots'] as number[]).slice(1) }),
    (j) => ({ ...j, slots: (j['slots'] as number[]).map((x, i) => (i === 5 ? 99 : x)) }),
    (j) => ({ ...j, slots: (j['slots'] as number[]).map((x, i) => (i === 5 ? -1 : x)) }),
    (j) => ({ ...j, slots: (j['slots'] as number[]).map((x, i) => (i === 5 ? 1.5 : x)) }),
    (j) => ({ ...j, slots: (j['slots'] as number[]).map((x, i) => (i === 1 ? (j['slots'] as number[])[0] : x)) }),
    (j) => ({ ...j, nodes: [...(j['nodes'] as object[])].reverse() }),
    (j) => ({ ...j, nodes: (j['nodes'] as object[]).map((n, i) => (i === 0 ? { ...n, weight: 0 } : n)) }),
    (j) => ({ ...j, nodes: (j['nodes'] as object[]).map((n, i) => (i === 0 ? { ...n, domain: 'r0' } : n)) }),
    (j) => ({ ...j, nodes: 'nope' }),
    (j) => ({ ...j, rules: { ...(j['rules'] as object), pgCount: 0 } }),
    (j) => ({ ...j, rules: { ...(j['rules'] as object), failureDomain: 'zone' } }),
    (j) => ({ ...j, epoch: -3 }),
    () => null,
    () => 'pgmap',
  ];
  for (const corrupt of corruptions) {
    let code: string | undefined;
    try {
      pgMapFromJson(corrupt(JSON.parse(JSON.stringify(good)) as Record<string, unknown>));
    } catch (err) {
      code = isTwError(err) ? err.code : String(err);
    }
    expect(code, corrupt.toString()).toBe('TW_PLACEMENT_BAD_PG_MAP');
  }
  // Two slots of one PG on the same rack break the cap of 1 per rack.
  const sameRack = JSON.parse(JSON.stringify(good)) as { slots: number[] };
  const pg0 = sameRack.slots.slice(0, 4);
  const rackOf = (i: number): string => m.nodes[i]!.domain.split('/')[0]!;
  const other = m.nodes.findIndex((n, i) => !pg0.includes(i) && rackOf(i) === rackOf(pg0[0]!));
  sameRack.slots[1] = other;
  expect(() => pgMapFromJson(sameRack)).toThrowError(expect.objectContaining({ code: 'TW_PLACEMENT_BAD_PG_MAP' }));
});
