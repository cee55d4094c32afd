/** Cluster maps and rules for tests: hand-built ones and fast-check arbitraries. */
import fc from 'fast-check';
import type { ClusterMap, ClusterNode, NodeState, PgMap, PlacementRules } from '../src/index.js';

export const LEVELS = ['zone', 'rack', 'host'] as const;

export function node(id: string, domain: string, weight = 1, state: NodeState = 'up'): ClusterNode {
  return { id, address: `127.0.0.1:${id}`, domain, weight, state };
}

/** `count` up nodes n000.., `perHost` per host, `hostsPerRack` per rack, one zone. */
export function uniformMap(count: number, opts: { perHost?: number; hostsPerRack?: number; weight?: (i: number) => number; epoch?: number } = {}): ClusterMap {
  const perHost = opts.perHost ?? 1;
  const hostsPerRack = opts.hostsPerRack ?? 4;
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < count; i++) {
    const host = Math.floor(i / perHost);
    const rack = Math.floor(host / hostsPerRack);
    nodes.push(node(`n${String(i).padStart(3, '0')}`, `z0/r${rack}/h${host}`, opts.weight?.(i) ?? 1));
  }
  return { epoch: opts.epoch ?? 1, domainLevels: [...LEVELS], nodes };
}

export function withNodes(map: ClusterMap, nodes: readonly ClusterNode[]): ClusterMap {
  return { ...map, epoch: map.epoch + 1, nodes };
}

/** The PG map as arrays of node ids (the reference's shape). */
export function asLists(m: PgMap): string[][] {
  const w = m.rules.width;
  const out: string[][] = [];
  for (let pg = 0; pg < m.rules.pgCount; pg++) {
    const row: string[] = [];
    for (let s = 0; s < w; s++) row.push(m.nodes[m.slots[pg * w + s]!]!.id);
    out.push(row);
  }
  return out;
}

export function weightsOf(m: PgMap): Map<string, number> {
  return new Map(m.nodes.map((n) => [n.id, n.weight]));
}

/** Deterministic shuffle (xorshift32) so tests can reorder inputs without Math.random. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed | 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const arbState: fc.Arbitrary<NodeState> = fc.constantFrom<NodeState>('up', 'up', 'up', 'up', 'up', 'down', 'draining', 'out');
const arbWeight = fc.constantFrom(0.5, 1, 1, 1, 2, 3.7, 10);

/** A node with an id drawn from a small alphabet (so ids collide and sort in unusual orders). */
const arbNodeFields = fc.record({
  id: fc.stringMatching(/^[A-Za-z0-9._-]{1,6}$/),
  zone: fc.integer({ min: 0, max: 2 }),
  rack: fc.integer({ min: 0, max: 2 }),
  host: fc.integer({ min: 0, max: 5 }),
  weight: arbWeight,
  state: arbState,
});

/** Random valid cluster maps (unique ids), 1..maxNodes nodes in few domains so that caps bind. */
export function arbClusterMap(maxNodes = 24): fc.Arbitrary<ClusterMap> {
  return fc
    .uniqueArray(arbNodeFields, { minLength: 1, maxLength: maxNodes, selector: (n) => n.id })
    .map((fields) => ({
      epoch: 7,
      domainLevels: [...LEVELS],
      nodes: fields.map((f) => node(f.id, `z${f.zone}/r${f.rack}/h${f.host}`, f.weight, f.state)),
    }));
}

export const arbRules: fc.Arbitrary<PlacementRules> = fc.record({
  pgCount: fc.integer({ min: 1, max: 48 }),
  redundancy: fc.oneof(
    fc.record({ kind: fc.constant('ec' as const), k: fc.integer({ min: 1, max: 6 }), m: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ kind: fc.constant('replicate' as const), n: fc.integer({ min: 1, max: 4 }) }),
    fc.constant({ kind: 'none' as const }),
  ),
  failureDomain: fc.constantFrom('zone', 'rack', 'host'),
  // Sometimes the strictest cap: one fragment of a stripe per domain.
  domainCapMax: fc.constantFrom(undefined, undefined, 1),
});

/** A membership change: each node may go down/out, change weight or domain; new nodes may join. */
export function arbChange(map: ClusterMap): fc.Arbitrary<ClusterMap> {
  const perNode = map.nodes.map((n) =>
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(n) },
      { weight: 1, arbitrary: arbState.map((state) => ({ ...n, state })) },
      { weight: 1, arbitrary: arbWeight.map((weight) => ({ ...n, weight })) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 }).map((h) => ({ ...n, domain: n.domain.replace(/h\d+$/, `h${h}`) })) },
      // Move into another node's host: PGs holding both may now break the cap.
      { weight: 1, arbitrary: fc.nat().map((i) => ({ ...n, domain: map.nodes[i % map.nodes.length]!.domain })) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
  );
  return fc.tuple(fc.tuple(...perNode), fc.uniqueArray(arbNodeFields, { maxLength: 4, selector: (n) => n.id })).map(([kept, added]) => {
    const nodes = kept.filter((n): n is ClusterNode => n !== undefined);
    const ids = new Set(nodes.map((n) => n.id));
    for (const f of added) if (!ids.has(f.id)) nodes.push(node(f.id, `z${f.zone}/r${f.rack}/h${f.host}`, f.weight, f.state));
    return withNodes(map, nodes);
  });
}
