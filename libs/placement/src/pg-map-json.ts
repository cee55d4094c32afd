import { isTwError } from '@tw/errors';
import { type NormalizedRules, type PlacementRules, domainAt, normalizeRules, validateClusterMap } from './cluster-map.js';
import { placementErrors } from './errors.js';
import type { PgMap, PgMapNode } from './pg-map.js';

/**
 * A PG map as plain JSON, for the coordinators' state machine and snapshots. The PG map is state,
 * not a function of the current cluster map alone: rebuildPgMap depends on the previous PG map,
 * so it must be persisted (replicated) together with the cluster map.
 */
export interface PgMapJson {
  readonly format: 1;
  readonly epoch: number;
  readonly rules: PlacementRules;
  readonly domainLevels: readonly string[];
  readonly nodes: readonly PgMapNode[];
  /** pgCount * width node indexes, PG-major. */
  readonly slots: readonly number[];
}

export function pgMapToJson(m: PgMap): PgMapJson {
  const { pgCount, redundancy, failureDomain, domainCapMax } = m.rules;
  return {
    format: 1,
    epoch: m.epoch,
    rules: { pgCount, redundancy, failureDomain, domainCapMax },
    domainLevels: [...m.domainLevels],
    nodes: m.nodes.map((n) => ({ id: n.id, weight: n.weight, domain: n.domain })),
    slots: Array.from(m.slots),
  };
}

/**
 * Reads a PG map back, checking everything a built map guarantees: valid rules and nodes (sorted,
 * unique ids), every slot index in range, distinct nodes per PG, caps held. Throws
 * TW_PLACEMENT_BAD_PG_MAP (with the cause) on anything else.
 */
export function pgMapFromJson(json: unknown): PgMap {
  const fail = (why: string, cause?: unknown): never => {
    throw placementErrors.create('TW_PLACEMENT_BAD_PG_MAP', `PG map: ${why}`, cause === undefined ? {} : { cause });
  };
  if (typeof json !== 'object' || json === null) fail('not an object');
  const j = json as Partial<PgMapJson>;
  if (j.format !== 1) fail(`unknown format ${String(j.format)}`);
  let rules: NormalizedRules;
  try {
    rules = normalizeRules(j.rules as PlacementRules);
    // The node list must be a valid cluster map of up nodes (ids, weights, domain paths).
    validateClusterMap({
      epoch: j.epoch as number,
      domainLevels: j.domainLevels as string[],
      nodes: (Array.isArray(j.nodes) ? j.nodes : [null]).map((n: PgMapNode, i) => ({ ...n, address: `node-${i}`, state: 'up' })),
    });
  } catch (err) {
    if (isTwError(err)) return fail(err.message, err);
    throw err;
  }
  const nodes = j.nodes!;
  const levels = j.domainLevels!;
  const level = levels.indexOf(rules.failureDomain);
  if (level < 0) fail(`failure domain ${rules.failureDomain} is not one of its levels`);
  for (let i = 1; i < nodes.length; i++) if (!(nodes[i - 1]!.id < nodes[i]!.id)) fail('nodes are not sorted by id');
  const { pgCount, width, domainCapMax } = rules;
  if (!Array.isArray(j.slots) || j.slots.length !== pgCount * width) fail(`slots must hold ${pgCount} x ${width} entries`);
  const slots = new Uint32Array(pgCount * width);
  for (let pg = 0; pg < pgCount; pg++) {
    const seen = new Set<number>();
    const perDomain = new Map<string, number>();
    for (let s = 0; s < width; s++) {
      const x: unknown = j.slots![pg * width + s];
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= nodes.length) return fail(`pg ${pg} slot ${s}: node index ${String(x)} out of range`);
      if (seen.has(x)) fail(`pg ${pg} uses node ${nodes[x]!.id} twice`);
      seen.add(x);
      const d = domainAt(nodes[x]!.domain, level);
      const c = (perDomain.get(d) ?? 0) + 1;
      if (c > domainCapMax) fail(`pg ${pg} has ${c} slots in ${d}, above the cap ${domainCapMax}`);
      perDomain.set(d, c);
      slots[pg * width + s] = x;
    }
  }
  return Object.freeze({
    epoch: j.epoch!,
    rules,
    domainLevels: Object.freeze([...levels]),
    nodes: Object.freeze(nodes.map((n) => Object.freeze({ id: n.id, weight: n.weight, domain: n.domain }))),
    slots,
  });
}
