/**
 * PG-map build and rebuild time (issue 2): 1,000 nodes (4 per host, 5 hosts per rack, weights
 * 1 / 1.5 / 2 in turn) x 4,096 PGs, ec:4+2 and ec:8+3 with the cap at host level. Median of runs.
 *
 * Baseline, measured in the same run: a plain loop that draws the same number of
 * (pg, slot, node) rendezvous keys (pgCount x width x nodes) and keeps the minimum, with no
 * exclusions and no caps: the floor for any per-slot weighted rendezvous build. ratio =
 * baseline / build (BENCH.md: above 1 would be better than the floor). Rebuilds are compared
 * with a full build of the same map (ratio = build / rebuild: how much cheaper incremental is).
 * Slots moved by a rebuild are compared with those a fresh build of the new map would move
 * (ratio = fresh / rebuild, above 1: the rebuild moves less); both over the ideal share.
 */
import { type ClusterMap, type ClusterNode, type PgMap, type PlacementRules, buildPgMap, drawExp, nodeHash64, normalizeRules, pgMapMoves, rebuildPgMap, slotHash } from '@tw/placement';
import { type Metric, median, quick, round, scale, withBaseline } from './lib/harness.js';

const NODES = 1000;
const PG_COUNT = 4096;

function clusterMap(): ClusterMap {
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const host = Math.floor(i / 4);
    nodes.push({
      id: `sn-${String(i).padStart(4, '0')}`,
      address: `10.0.${Math.floor(i / 250)}.${i % 250}:7400`,
      domain: `zone-${host % 3}/rack-${Math.floor(host / 5)}/host-${host}`,
      weight: [1, 1.5, 2][i % 3]!,
      state: 'up',
    });
  }
  return { epoch: 1, domainLevels: ['zone', 'rack', 'host'], nodes };
}

function timeMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Median of `runs` timed calls after one warm-up call (none under BENCH_QUICK); returns the last result too. */
function medianMs<T>(runs: number, fn: () => T): { ms: number; result: T } {
  let result = quick ? undefined : fn();
  const xs: number[] = [];
  for (let r = 0; r < runs; r++) xs.push(timeMs(() => (result = fn())));
  return { ms: median(xs), result: result as T };
}

/** The floor: draw pgCount x width x nodes keys, keep each slot's minimum. */
function plainLoop(map: ClusterMap, width: number): number {
  const n = map.nodes.length;
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const w = new Float64Array(n);
  map.nodes.forEach((node, i) => {
    const h = nodeHash64(node.id);
    hi[i] = Number(h >> 32n);
    lo[i] = Number(h & 0xffffffffn);
    w[i] = node.weight;
  });
  const sh = new Uint32Array(2);
  let acc = 0;
  for (let pg = 0; pg < PG_COUNT; pg++) {
    for (let s = 0; s < width; s++) {
      slotHash(pg, s, sh);
      let best = -1;
      let bestKey = Infinity;
      for (let i = 0; i < n; i++) {
        const key = drawExp(sh[0]!, sh[1]!, hi[i]!, lo[i]!) / w[i]!;
        if (key < bestKey) {
          bestKey = key;
          best = i;
        }
      }
      acc += best;
    }
  }
  return acc;
}

/** Share of slots moved by an incremental rebuild and by a fresh build, over the ideal share. */
function movement(rules: PlacementRules, map: ClusterMap, next: ClusterMap, prev: PgMap, changedWeight: number, label: string): Metric[] {
  const total = rules.pgCount * normalizeRules(rules).width;
  const weightOfUp = (m: ClusterMap): number => m.nodes.reduce((s, n) => s + (n.state === 'up' ? n.weight : 0), 0);
  // The changed node's share of the larger of the two maps.
  const ideal = (total * changedWeight) / Math.max(weightOfUp(map), weightOfUp(next));
  const moved = pgMapMoves(prev, rebuildPgMap(prev, next)).length;
  const fresh = pgMapMoves(prev, buildPgMap(next, rules)).length;
  // ratio = fresh / rebuild, so that above 1 means the incremental rebuild moves less.
  return [
    {
      metric: `rebuild.${label}.moved_over_ideal`,
      value: round(moved / ideal),
      unit: 'ratio',
      baseline: `build_from_scratch.${label}.moved_over_ideal`,
      baseline_value: round(fresh / ideal),
      ratio: round(fresh / Math.max(moved, 1)),
    },
  ];
}

export default async function run(): Promise<Metric[]> {
  const out: Metric[] = [];
  const runs = scale(5, 1);
  const map = clusterMap();
  for (const [k, m] of [[4, 2], [8, 3]] as const) {
    const label = `ec${k}+${m}`;
    const rules: PlacementRules = { pgCount: PG_COUNT, redundancy: { kind: 'ec', k, m }, failureDomain: 'host' };
    const width = k + m;
    const floor = medianMs(runs, () => plainLoop(map, width));
    const build = medianMs(runs, () => buildPgMap(map, rules));
    out.push(withBaseline({ metric: `build.${label}.1000nodes.4096pgs`, value: round(build.ms), unit: 'ms' }, 'plain_rendezvous_loop', floor.ms));

    const prev = build.result;
    const joiner: ClusterNode = { id: 'sn-new', address: '10.0.9.9:7400', domain: 'zone-0/rack-99/host-999', weight: 1.5, state: 'up' };
    const added: ClusterMap = { ...map, epoch: 2, nodes: [...map.nodes, joiner] };
    const removed: ClusterMap = { ...map, epoch: 2, nodes: map.nodes.map((n) => (n.id === 'sn-0500' ? { ...n, state: 'down' as const } : n)) };
    for (const [change, next] of [['add1', added], ['remove1', removed]] as const) {
      const rebuild = medianMs(runs, () => rebuildPgMap(prev, next));
      out.push(withBaseline({ metric: `rebuild.${change}.${label}.1000nodes.4096pgs`, value: round(rebuild.ms), unit: 'ms' }, `build.${label}`, build.ms));
    }
    if (!quick || k === 4) {
      // About 25 slots change at 1,000 nodes, so these ratios carry about 20 % of Poisson noise.
      out.push(...movement(rules, map, added, prev, joiner.weight, `add1.${label}.1000nodes`));
      out.push(...movement(rules, map, removed, prev, map.nodes.find((n) => n.id === 'sn-0500')!.weight, `remove1.${label}.1000nodes`));
    }
  }
  // Where cascades matter: 12 nodes (2 per host) -> 13 and -> 11, 4096 PGs of ec:4+2.
  const rules: PlacementRules = { pgCount: PG_COUNT, redundancy: { kind: 'ec', k: 4, m: 2 }, failureDomain: 'host' };
  const small: ClusterMap = { epoch: 1, domainLevels: ['zone', 'rack', 'host'], nodes: map.nodes.slice(0, 12).map((n, i) => ({ ...n, weight: 1, domain: `zone-0/rack-0/host-${i >> 1}` })) };
  const prev = buildPgMap(small, rules);
  const grown: ClusterMap = { ...small, epoch: 2, nodes: [...small.nodes, { id: 'sn-new', address: '10.0.9.9:7400', domain: 'zone-0/rack-0/host-99', weight: 1, state: 'up' }] };
  const shrunk: ClusterMap = { ...small, epoch: 2, nodes: small.nodes.slice(1) };
  out.push(...movement(rules, small, grown, prev, 1, 'add1.ec4+2.12nodes'));
  out.push(...movement(rules, small, shrunk, prev, 1, 'remove1.ec4+2.12nodes'));
  return out;
}
