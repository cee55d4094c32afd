/**
 * A naive reference of placement, written for obviousness, not speed: BigInt hashing, linear
 * scans, arrays of ids. The differential tests compare the real code against it slot for slot.
 */
import { xxh64 } from '@node-rs/xxhash';
import type { ClusterMap, ClusterNode, PlacementRules } from '../src/index.js';

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64's finalizer. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

const seed = (ascii: string): bigint => BigInt('0x' + Buffer.from(ascii, 'ascii').toString('hex'));

/** -ln(u) of the draw of (pg, slot, node id). */
export function refExp(pg: number, slot: number, id: string): number {
  const nodeHash = xxh64(Buffer.from(id, 'ascii'), seed('tw-node'));
  const slotHash = mix64(((BigInt(pg) << 32n) | BigInt(slot)) ^ seed('tw-slots'));
  const z = mix64(nodeHash ^ slotHash);
  const u = (Number(z >> 11n) + 0.5) / 2 ** 53;
  return -Math.log(u);
}

export function refWidth(rules: PlacementRules): number {
  const r = rules.redundancy;
  return r.kind === 'ec' ? r.k + r.m : r.kind === 'replicate' ? r.n : 1;
}

export function refCap(rules: PlacementRules): number {
  const r = rules.redundancy;
  const losses = r.kind === 'ec' ? r.m : r.kind === 'replicate' ? r.n - 1 : 0;
  return rules.domainCapMax ?? Math.max(1, losses);
}

export function refDomain(map: ClusterMap, rules: PlacementRules, node: ClusterNode): string {
  const level = map.domainLevels.indexOf(rules.failureDomain);
  return node.domain.split('/').slice(0, level + 1).join('/');
}

function upNodes(map: ClusterMap): ClusterNode[] {
  return map.nodes.filter((n) => n.state === 'up').sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Is there any way to put `width` distinct up nodes in a PG with at most `cap` per domain? (brute force, small maps) */
export function refPlaceable(map: ClusterMap, rules: PlacementRules): boolean {
  const up = upNodes(map);
  const width = refWidth(rules);
  const cap = refCap(rules);
  const search = (from: number, chosen: ClusterNode[]): boolean => {
    if (chosen.length === width) return true;
    for (let i = from; i < up.length; i++) {
      const d = refDomain(map, rules, up[i]!);
      if (chosen.filter((c) => refDomain(map, rules, c) === d).length >= cap) continue;
      if (search(i + 1, [...chosen, up[i]!])) return true;
    }
    return false;
  };
  return search(0, []);
}

/** Best node for (pg, slot) among `candidates` (smallest -ln(u)/weight, ties to the smaller id). */
function best(pg: number, slot: number, candidates: ClusterNode[]): ClusterNode | undefined {
  let winner: ClusterNode | undefined;
  let winnerKey = Infinity;
  for (const node of candidates) {
    const key = refExp(pg, slot, node.id) / node.weight;
    if (winner === undefined || key < winnerKey || (key === winnerKey && node.id < winner.id)) {
      winner = node;
      winnerKey = key;
    }
  }
  return winner;
}

/** From scratch: slot by slot, the best up node not used by earlier slots whose domain is under the cap. */
export function refBuild(map: ClusterMap, rules: PlacementRules): string[][] {
  const up = upNodes(map);
  const width = refWidth(rules);
  const cap = refCap(rules);
  const out: string[][] = [];
  for (let pg = 0; pg < rules.pgCount; pg++) {
    const chosen: ClusterNode[] = [];
    for (let slot = 0; slot < width; slot++) {
      const fits = up.filter(
        (n) => !chosen.includes(n) && chosen.filter((c) => refDomain(map, rules, c) === refDomain(map, rules, n)).length < cap,
      );
      const b = best(pg, slot, fits);
      if (b === undefined) throw new Error('reference: no node fits');
      chosen.push(b);
    }
    out.push(chosen.map((n) => n.id));
  }
  return out;
}

/**
 * Incremental: keep up nodes (lower slots first within the cap), fill vacated slots with the best
 * node that fits beside all other slots, and let a node claim a kept slot when it outranks the
 * occupant now but did not under the previous weights (or was not up before).
 */
export function refRebuild(prev: string[][], prevWeights: ReadonlyMap<string, number>, map: ClusterMap, rules: PlacementRules): string[][] {
  const up = upNodes(map);
  const byId = new Map(up.map((n) => [n.id, n]));
  const width = refWidth(rules);
  const cap = refCap(rules);
  const dom = (n: ClusterNode): string => refDomain(map, rules, n);
  return prev.map((prevSlots, pg) => {
    const cur: (ClusterNode | undefined)[] = [];
    for (const id of prevSlots) {
      const n = byId.get(id);
      cur.push(n !== undefined && cur.filter((c) => c !== undefined && dom(c) === dom(n)).length < cap ? n : undefined);
    }
    for (let slot = 0; slot < width; slot++) {
      const others = cur.filter((c, i): c is ClusterNode => c !== undefined && i !== slot);
      const fits = up.filter((n) => !others.includes(n) && others.filter((c) => dom(c) === dom(n)).length < cap);
      const occupant = cur[slot];
      if (occupant === undefined) {
        cur[slot] = best(pg, slot, fits);
        if (cur[slot] === undefined) throw new Error('reference: no node fits');
        continue;
      }
      const e = (n: ClusterNode): number => refExp(pg, slot, n.id);
      const beats = (a: ClusterNode, wa: number, b: ClusterNode, wb: number): boolean =>
        e(a) / wa < e(b) / wb || (e(a) / wa === e(b) / wb && a.id < b.id);
      const claimants = fits.filter((q) => {
        if (q === occupant || !beats(q, q.weight, occupant, occupant.weight)) return false;
        const wasQ = prevWeights.get(q.id);
        return wasQ === undefined || !beats(q, wasQ, occupant, prevWeights.get(occupant.id)!);
      });
      cur[slot] = best(pg, slot, claimants) ?? occupant;
    }
    return cur.map((n) => n!.id);
  });
}
