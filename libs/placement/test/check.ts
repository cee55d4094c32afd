import { expect } from 'vitest';
import { type ClusterMap, type PgMap, domainAt, pgNodes } from '../src/index.js';

/** Every PG: `width` distinct up nodes, at most the cap in one domain at the rules' level. */
export function checkPgMap(m: PgMap, map: ClusterMap): void {
  const up = new Map(map.nodes.filter((n) => n.state === 'up').map((n) => [n.id, n]));
  const level = map.domainLevels.indexOf(m.rules.failureDomain);
  for (let pg = 0; pg < m.rules.pgCount; pg++) {
    const ids = pgNodes(m, pg);
    expect(ids).toHaveLength(m.rules.width);
    expect(new Set(ids).size).toBe(ids.length);
    const perDomain = new Map<string, number>();
    for (const id of ids) {
      const n = up.get(id);
      expect(n, `pg ${pg}: ${id} is not up`).toBeDefined();
      const d = domainAt(n!.domain, level);
      perDomain.set(d, (perDomain.get(d) ?? 0) + 1);
    }
    for (const [d, c] of perDomain) expect(c, `pg ${pg}: ${c} slots in ${d}`).toBeLessThanOrEqual(m.rules.domainCapMax);
  }
}

