import { assert } from '@tw/errors';
import { type ClusterMap, type NormalizedRules, type PlacementRules, domainAt, levelIndexOf, normalizeRules, validateClusterMap } from './cluster-map.js';
import { placementErrors } from './errors.js';
import { drawExp, nodeHash64, slotHash } from './hash.js';
import { CANDIDATES_MAX } from './limits.js';

/** An up node as a PG map saw it when it was built. */
export interface PgMapNode {
  readonly id: string;
  readonly weight: number;
  /** Full failure-domain path. */
  readonly domain: string;
}

/**
 * The placement-group map: for each PG, an ordered list of `width` distinct up nodes, slot i
 * holding fragment i of every stripe in the PG. Immutable by contract: never write to `slots`.
 */
export interface PgMap {
  /** Epoch of the cluster map it was built from. */
  readonly epoch: number;
  readonly rules: NormalizedRules;
  /** Domain levels of that cluster map. */
  readonly domainLevels: readonly string[];
  /** The up nodes of that cluster map, sorted by id; `slots` holds indexes into this list. */
  readonly nodes: readonly PgMapNode[];
  /** pgCount * width node indexes: slot s of PG p is `slots[p * width + s]`. */
  readonly slots: Uint32Array;
}

/** The up nodes of a map, compiled for the inner loops. */
interface NodeTable {
  readonly nodes: readonly PgMapNode[];
  readonly ids: readonly string[];
  readonly hashHi: Uint32Array;
  readonly hashLo: Uint32Array;
  readonly weight: Float64Array;
  /** Failure-domain index at the rules' level (0..domainCount-1). */
  readonly dom: Int32Array;
  readonly domainCount: number;
  readonly indexById: ReadonlyMap<string, number>;
}

function compile(nodes: readonly PgMapNode[], levelIndex: number): NodeTable {
  const n = nodes.length;
  const hashHi = new Uint32Array(n);
  const hashLo = new Uint32Array(n);
  const weight = new Float64Array(n);
  const dom = new Int32Array(n);
  const domainIndex = new Map<string, number>();
  const indexById = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const node = nodes[i]!;
    const h = nodeHash64(node.id);
    hashHi[i] = Number(h >> 32n);
    hashLo[i] = Number(h & 0xffffffffn);
    weight[i] = node.weight;
    const d = domainAt(node.domain, levelIndex);
    let di = domainIndex.get(d);
    if (di === undefined) {
      di = domainIndex.size;
      domainIndex.set(d, di);
    }
    dom[i] = di;
    indexById.set(node.id, i);
  }
  return { nodes, ids: nodes.map((x) => x.id), hashHi, hashLo, weight, dom, domainCount: domainIndex.size, indexById };
}

/** Up nodes sorted by id: the only thing of the input's order that placement sees. */
function upNodes(map: ClusterMap): PgMapNode[] {
  const out: PgMapNode[] = [];
  for (const node of map.nodes) if (node.state === 'up') out.push({ id: node.id, weight: node.weight, domain: node.domain });
  out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

const tables = new WeakMap<PgMap, NodeTable>();

function tableOf(pgMap: PgMap): NodeTable {
  let t = tables.get(pgMap);
  if (t === undefined) {
    t = compile(pgMap.nodes, pgMap.domainLevels.indexOf(pgMap.rules.failureDomain));
    tables.set(pgMap, t);
  }
  return t;
}

/**
 * Per-PG scratch state: which nodes the PG uses (stamped, so no clearing between PGs) and how
 * many of its slots each failure domain holds.
 */
class Scratch {
  readonly usedStamp: Int32Array;
  readonly domCount: Int32Array;
  readonly slotHash = new Uint32Array(2);
  stamp = 0;
  constructor(nodeCount: number, domainCount: number) {
    this.usedStamp = new Int32Array(nodeCount);
    this.domCount = new Int32Array(domainCount);
  }
}

/**
 * The best node for one slot: smallest rendezvous key (-ln(u) / weight) among the nodes the PG
 * does not use whose failure domain holds fewer than `cap` of the PG's slots. -1 when none fits
 * (cannot happen on a validated map: see validateClusterMap).
 */
function bestFree(t: NodeTable, sc: Scratch, cap: number): number {
  const hi = sc.slotHash[0]!;
  const lo = sc.slotHash[1]!;
  const { usedStamp, domCount } = sc;
  const { hashHi, hashLo, weight, dom } = t;
  const stamp = sc.stamp;
  let best = -1;
  let bestKey = Infinity;
  for (let i = 0; i < hashHi.length; i++) {
    if (usedStamp[i] === stamp || domCount[dom[i]!]! >= cap) continue;
    const key = drawExp(hi, lo, hashHi[i]!, hashLo[i]!) / weight[i]!;
    if (key < bestKey) {
      bestKey = key;
      best = i;
    }
  }
  return best;
}

/**
 * Builds the PG map from scratch. For each PG, slots 0..width-1 in order, slot s goes to the up
 * node with the smallest rendezvous key for (pg, s) among the nodes that earlier slots of the PG
 * do not use and whose failure domain (at `rules.failureDomain`) holds fewer than the cap of the
 * earlier slots. Deterministic: depends on the set of up nodes (ids, weights, domains) and the
 * rules only, never on the order of `map.nodes`. Throws the coded errors of validateClusterMap.
 */
export function buildPgMap(map: ClusterMap, rules: PlacementRules): PgMap {
  const r = normalizeRules(rules);
  validateClusterMap(map, r);
  const level = levelIndexOf(map, r);
  const nodes = upNodes(map);
  const t = compile(nodes, level);
  const { pgCount, width, domainCapMax: cap } = r;
  const slots = new Uint32Array(pgCount * width);
  const sc = new Scratch(nodes.length, t.domainCount);
  for (let pg = 0; pg < pgCount; pg++) {
    sc.stamp = pg + 1;
    const base = pg * width;
    for (let s = 0; s < width; s++) {
      slotHash(pg, s, sc.slotHash);
      const best = bestFree(t, sc, cap);
      assert(best >= 0, () => `no node fits pg ${pg} slot ${s} on a map that passed validation`);
      slots[base + s] = best;
      sc.usedStamp[best] = sc.stamp;
      sc.domCount[t.dom[best]!]!++;
    }
    for (let s = 0; s < width; s++) sc.domCount[t.dom[slots[base + s]!]!] = 0;
  }
  return freeze({ epoch: map.epoch, rules: r, domainLevels: [...map.domainLevels], nodes, slots });
}

function freeze(m: PgMap): PgMap {
  Object.freeze(m.nodes);
  Object.freeze(m.domainLevels);
  for (const n of m.nodes) Object.freeze(n);
  return Object.freeze(m);
}

/**
 * Rebuilds a PG map for a new cluster map, moving as few slots as the rules allow. The rules
 * (pgCount, redundancy, failure domain, cap) are `prev`'s. Throws the coded errors of
 * validateClusterMap, and TW_PLACEMENT_BAD_MAP when `next` is older (smaller epoch) than `prev`.
 *
 * Each PG starts from its `prev` slots and is processed slot by slot, 0..width-1:
 * 1. A slot whose node is no longer up (down, draining, out, or gone from the map) is vacated;
 *    so is a slot whose node's failure domain now holds more than the cap of the PG's slots (a
 *    domain path changed): lower slots keep their node first.
 * 2. A vacated slot gets the node with the smallest rendezvous key for (pg, slot) among the up
 *    nodes that the PG's other slots do not use and whose domain holds fewer than the cap of the
 *    other slots: `nextCandidates(result, pg, slot)[0]` before the fill.
 * 3. A kept slot moves only to a node that *gained* on its occupant: a node that outranks the
 *    occupant for (pg, slot) now but did not in `prev` (a node that was not up in `prev`, or
 *    either node's weight changed), that the other slots do not use, and that fits the cap. Of
 *    several, the best ranked wins.
 *
 * Guarantees (each tested in test/rebuild.test.ts):
 * - The result satisfies everything buildPgMap's does: distinct up nodes per PG, caps hold.
 * - rebuildPgMap(buildPgMap(c, r), c) equals buildPgMap(c, r), and rebuilding is idempotent.
 * - Only nodes that leave move data away: when `next` only takes nodes out of `up` (down,
 *   draining, out, removed), exactly the slots on those nodes move. When it only adds up nodes,
 *   every slot that moves lands on an added node, at most one slot per added node per PG.
 * - Agreement with a build from scratch: for prev = buildPgMap(c), if `next` removes one node, the
 *   result equals buildPgMap(next) in every PG where buildPgMap(next) changes only that node's
 *   slot (no other node of the PG changes slot); if `next` adds one node, the result equals
 *   buildPgMap(next) in every PG where buildPgMap(next) changes only the slot the added node
 *   takes. In the other PGs (a "cascade": the from-scratch build also shifts nodes already in
 *   the PG between slots, which costs a data move each) the rebuild moves only the leaving
 *   node's slots, or only the one slot the added node claims.
 */
export function rebuildPgMap(prev: PgMap, next: ClusterMap): PgMap {
  const r = prev.rules;
  validateClusterMap(next, r);
  if (next.epoch < prev.epoch) {
    throw placementErrors.create('TW_PLACEMENT_BAD_MAP', `cluster map epoch ${next.epoch} is older than the PG map's ${prev.epoch}`, {
      details: { field: 'epoch', epoch: next.epoch, pgMapEpoch: prev.epoch },
    });
  }
  const level = levelIndexOf(next, r);
  const nodes = upNodes(next);
  const t = compile(nodes, level);
  const n = nodes.length;
  const { pgCount, width, domainCapMax: cap } = r;
  assert(prev.slots.length === pgCount * width && prev.slots.every((j) => j < prev.nodes.length), 'prev PG map is inconsistent with its rules');

  // Previous index -> new index (-1: no longer up); per new node, its previous weight (NaN: new).
  const prevToNew = new Int32Array(prev.nodes.length);
  const oldWeight = new Float64Array(n).fill(NaN);
  for (let i = 0; i < prev.nodes.length; i++) {
    const p = prev.nodes[i]!;
    const j = t.indexById.get(p.id);
    prevToNew[i] = j ?? -1;
    if (j !== undefined) oldWeight[j] = p.weight;
  }
  // Nodes whose key can have dropped below an unchanged occupant's: new ones and heavier ones.
  const gainers: number[] = [];
  for (let j = 0; j < n; j++) if (!(oldWeight[j]! >= t.weight[j]!)) gainers.push(j);
  const all = Array.from({ length: n }, (_, j) => j);

  const slots = new Uint32Array(pgCount * width);
  const cur = new Int32Array(width);
  const sc = new Scratch(n, t.domainCount);
  const { hashHi, hashLo, weight, dom } = t;
  for (let pg = 0; pg < pgCount; pg++) {
    sc.stamp = pg + 1;
    const base = pg * width;
    // Step 1: keep what is still up and within the cap, lower slots first.
    for (let s = 0; s < width; s++) {
      const j = prevToNew[prev.slots[base + s]!]!;
      if (j >= 0 && sc.domCount[dom[j]!]! < cap) {
        cur[s] = j;
        sc.usedStamp[j] = sc.stamp;
        sc.domCount[dom[j]!]!++;
      } else {
        cur[s] = -1;
      }
    }
    for (let s = 0; s < width; s++) {
      slotHash(pg, s, sc.slotHash);
      const occupant = cur[s]!;
      let chosen: number;
      if (occupant < 0) {
        // Step 2: fill a vacated slot with the best node that fits beside the other slots.
        chosen = bestFree(t, sc, cap);
        assert(chosen >= 0, () => `no node fits pg ${pg} slot ${s} on a map that passed validation`);
      } else {
        // Step 3: a node that gained on the occupant may claim the slot.
        chosen = occupant;
        const hi = sc.slotHash[0]!;
        const lo = sc.slotHash[1]!;
        const eP = drawExp(hi, lo, hashHi[occupant]!, hashLo[occupant]!);
        const keyP = eP / weight[occupant]!;
        const oldKeyP = eP / oldWeight[occupant]!;
        const occupantDom = dom[occupant]!;
        let bestKey = keyP;
        const candidates = weight[occupant]! < oldWeight[occupant]! ? all : gainers;
        for (let c = 0; c < candidates.length; c++) {
          const q = candidates[c]!;
          if (sc.usedStamp[q] === sc.stamp) continue;
          const dq = dom[q]!;
          if (sc.domCount[dq]! - (dq === occupantDom ? 1 : 0) >= cap) continue;
          const eQ = drawExp(hi, lo, hashHi[q]!, hashLo[q]!);
          const keyQ = eQ / weight[q]!;
          if (!ranksBefore(keyQ, q, bestKey, chosen)) continue;
          const wasQ = oldWeight[q]!;
          // Outranked the occupant in prev too: it did not gain, it was only busy or capped.
          if (wasQ === wasQ && ranksBefore(eQ / wasQ, q, oldKeyP, occupant)) continue;
          bestKey = keyQ;
          chosen = q;
        }
        if (chosen !== occupant) {
          sc.usedStamp[occupant] = 0;
          sc.domCount[occupantDom]!--;
        }
      }
      if (chosen !== occupant) {
        cur[s] = chosen;
        sc.usedStamp[chosen] = sc.stamp;
        sc.domCount[dom[chosen]!]!++;
      }
    }
    for (let s = 0; s < width; s++) {
      const j = cur[s]!;
      slots[base + s] = j;
      sc.domCount[dom[j]!] = 0;
    }
  }
  return freeze({ epoch: next.epoch, rules: r, domainLevels: [...next.domainLevels], nodes, slots });
}

/** Rendezvous order: smaller key first, ties to the smaller node index (= smaller id). */
function ranksBefore(keyA: number, a: number, keyB: number, b: number): boolean {
  return keyA < keyB || (keyA === keyB && a < b);
}

function checkPg(pgMap: PgMap, pg: number): void {
  if (!Number.isInteger(pg) || pg < 0 || pg >= pgMap.rules.pgCount) {
    throw placementErrors.create('TW_PLACEMENT_BAD_PG', `pg ${pg} is not in 0..${pgMap.rules.pgCount - 1}`, { details: { pg } });
  }
}

/** The node ids of a PG, slot 0 first. */
export function pgNodes(pgMap: PgMap, pg: number): string[] {
  checkPg(pgMap, pg);
  const w = pgMap.rules.width;
  const out: string[] = [];
  for (let s = 0; s < w; s++) out.push(pgMap.nodes[pgMap.slots[pg * w + s]!]!.id);
  return out;
}

/**
 * The next candidates for a slot, best first, for repair and hedging: the up nodes of the PG map
 * in rendezvous order for (pg, slot), leaving out the slot's own node, the nodes of the PG's
 * other slots, nodes whose failure domain already holds the cap of the other slots, and
 * `exclude`. The first is where rebuildPgMap sends the slot if only its node leaves.
 */
export function nextCandidates(pgMap: PgMap, pg: number, slot: number, options: { limit?: number; exclude?: ReadonlySet<string> } = {}): string[] {
  checkPg(pgMap, pg);
  const w = pgMap.rules.width;
  if (!Number.isInteger(slot) || slot < 0 || slot >= w) {
    throw placementErrors.create('TW_PLACEMENT_BAD_PG', `slot ${slot} is not in 0..${w - 1}`, { details: { pg, slot } });
  }
  const limit = Math.min(options.limit ?? 8, CANDIDATES_MAX);
  const t = tableOf(pgMap);
  const taken = new Set<number>();
  const domCount = new Int32Array(t.domainCount);
  for (let s = 0; s < w; s++) {
    const j = pgMap.slots[pg * w + s]!;
    taken.add(j);
    if (s !== slot) domCount[t.dom[j]!]!++;
  }
  const sh = new Uint32Array(2);
  slotHash(pg, slot, sh);
  const ranked: { i: number; key: number }[] = [];
  for (let i = 0; i < t.ids.length; i++) {
    if (taken.has(i) || domCount[t.dom[i]!]! >= pgMap.rules.domainCapMax || options.exclude?.has(t.ids[i]!)) continue;
    ranked.push({ i, key: drawExp(sh[0]!, sh[1]!, t.hashHi[i]!, t.hashLo[i]!) / t.weight[i]! });
  }
  ranked.sort((a, b) => a.key - b.key || a.i - b.i);
  return ranked.slice(0, Math.max(0, limit)).map((x) => t.ids[x.i]!);
}

/** One slot whose node differs between two PG maps of the same rules. */
export interface SlotMove {
  readonly pg: number;
  readonly slot: number;
  readonly from: string;
  readonly to: string;
}

/** The slots whose node changed from `a` to `b` (same rules), in PG then slot order. */
export function pgMapMoves(a: PgMap, b: PgMap): SlotMove[] {
  if (a.rules.pgCount !== b.rules.pgCount || a.rules.width !== b.rules.width) {
    throw placementErrors.create('TW_PLACEMENT_BAD_RULES', 'PG maps of different pgCount or width cannot be compared', {
      details: { pgCountA: a.rules.pgCount, pgCountB: b.rules.pgCount, widthA: a.rules.width, widthB: b.rules.width },
    });
  }
  const moves: SlotMove[] = [];
  for (let i = 0; i < a.slots.length; i++) {
    const from = a.nodes[a.slots[i]!]!.id;
    const to = b.nodes[b.slots[i]!]!.id;
    if (from !== to) moves.push({ pg: Math.floor(i / a.rules.width), slot: i % a.rules.width, from, to });
  }
  return moves;
}

/** Slots held by each node of the map (nodes holding none are listed with 0). */
export function slotCounts(pgMap: PgMap): Map<string, number> {
  const counts = new Array<number>(pgMap.nodes.length).fill(0);
  for (const j of pgMap.slots) counts[j]!++;
  return new Map(pgMap.nodes.map((node, i) => [node.id, counts[i]!]));
}
