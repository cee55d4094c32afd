import { placementErrors } from './errors.js';
import { ADDRESS_MAX_CHARS, DOMAIN_LEVELS_MAX, DOMAIN_NAME_MAX_CHARS, NODES_MAX, NODE_ID_MAX_CHARS, PG_COUNT_MAX, WEIGHT_MAX, WEIGHT_MIN } from './limits.js';

/**
 * Health and membership of a storage node, as the coordinators record it.
 * - `up`: serving; the only state that receives placement-group slots.
 * - `down`: silent past the heartbeat timeout; its slots move (repair rebuilds them elsewhere).
 * - `draining`: planned removal; its slots move, its data migrates off before it goes `out`.
 * - `out`: no longer a member; kept in the map for history (and to keep its id reserved).
 */
export type NodeState = 'up' | 'down' | 'draining' | 'out';

export const NODE_STATES: readonly NodeState[] = ['up', 'down', 'draining', 'out'];

export interface ClusterNode {
  /** Stable identity: 1-64 characters of A-Z a-z 0-9 . _ - (hashed for placement: never reuse one). */
  readonly id: string;
  /** Where the data-plane transport reaches it (host:port); opaque to placement. */
  readonly address: string;
  /**
   * Failure-domain path, outermost first, one segment per level of `ClusterMap.domainLevels`:
   * `zone-a/rack-07/host-3`. Two paths are the same domain at a level when they agree on every
   * segment up to and including that level (`za/r1/h1` and `za/r2/h1` are different hosts).
   */
  readonly domain: string;
  /** Relative share of slots (e.g. capacity in TiB), finite, in [WEIGHT_MIN, WEIGHT_MAX]. */
  readonly weight: number;
  readonly state: NodeState;
}

export interface ClusterMap {
  /** Bumped by the coordinators on every change of the map; a non-negative safe integer. */
  readonly epoch: number;
  /** Names of the failure-domain levels, outermost first: `['zone', 'rack', 'host']`. */
  readonly domainLevels: readonly string[];
  /** Every member, in any order: placement sorts by id, so the order never matters. */
  readonly nodes: readonly ClusterNode[];
}

/** Redundancy of the stripes a PG map places; mirrors @tw/block-format's `Redundancy`. */
export type PlacementRedundancy =
  | { readonly kind: 'ec'; readonly k: number; readonly m: number }
  | { readonly kind: 'replicate'; readonly n: number }
  | { readonly kind: 'none' };

export interface PlacementRules {
  /** Number of placement groups, fixed at cluster creation; 1..PG_COUNT_MAX. */
  readonly pgCount: number;
  /** Slots per PG = fragments per stripe: k + m, n, or 1. */
  readonly redundancy: PlacementRedundancy;
  /** The domain level the cap applies at: one of the map's `domainLevels` (e.g. `host`, `rack`). */
  readonly failureDomain: string;
  /**
   * Most fragments of one stripe in one failure domain. Defaults to the losses the policy
   * tolerates (m for ec:k+m, n-1 for replicate:n, at least 1), so that losing a whole domain
   * never loses a stripe; a smaller value is stricter.
   */
  readonly domainCapMax?: number;
}

/** Rules with the derived figures filled in. */
export interface NormalizedRules {
  readonly pgCount: number;
  readonly redundancy: PlacementRedundancy;
  readonly failureDomain: string;
  /** Slots per PG (fragments per stripe). */
  readonly width: number;
  /** Most slots of one PG in one failure domain at `failureDomain`. */
  readonly domainCapMax: number;
}

const NODE_ID_RE = /^[A-Za-z0-9._-]+$/;
const DOMAIN_SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const LEVEL_RE = /^[a-z][a-z0-9_-]*$/;
/** ec bounds of @tw/erasure (k <= 16, m <= 4) and replicate:n <= 8. */
const EC_K_MAX = 16;
const EC_M_MAX = 4;
const REPLICAS_MAX = 8;

const bad = (code: Parameters<typeof placementErrors.create>[0], message: string, details: Record<string, unknown>): never => {
  throw placementErrors.create(code, message, { details });
};

function isPositiveInt(x: unknown, max: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= max;
}

/** Checks the rules alone (not against a map) and fills in width and cap. Throws TW_PLACEMENT_BAD_RULES. */
export function normalizeRules(rules: PlacementRules): NormalizedRules {
  const fail = (why: string, field: string): never => bad('TW_PLACEMENT_BAD_RULES', `placement rules: ${why}`, { field });
  if (typeof rules !== 'object' || rules === null) fail('not an object', 'rules');
  if (!isPositiveInt(rules.pgCount, PG_COUNT_MAX)) fail(`pgCount must be an integer in 1..${PG_COUNT_MAX}`, 'pgCount');
  const r = rules.redundancy as PlacementRedundancy | undefined;
  let width = 0;
  let losses = 0;
  if (r?.kind === 'ec') {
    if (!isPositiveInt(r.k, EC_K_MAX)) fail(`ec k must be 1..${EC_K_MAX}`, 'redundancy.k');
    if (!isPositiveInt(r.m, EC_M_MAX)) fail(`ec m must be 1..${EC_M_MAX}`, 'redundancy.m');
    width = r.k + r.m;
    losses = r.m;
  } else if (r?.kind === 'replicate') {
    if (!isPositiveInt(r.n, REPLICAS_MAX)) fail(`replicate n must be 1..${REPLICAS_MAX}`, 'redundancy.n');
    width = r.n;
    losses = r.n - 1;
  } else if (r?.kind === 'none') {
    width = 1;
  } else {
    fail('redundancy must be ec, replicate or none', 'redundancy');
  }
  if (typeof rules.failureDomain !== 'string' || !LEVEL_RE.test(rules.failureDomain)) fail('failureDomain must name a domain level', 'failureDomain');
  const defaultCap = Math.max(1, losses);
  const cap = rules.domainCapMax ?? defaultCap;
  if (!isPositiveInt(cap, defaultCap)) fail(`domainCapMax must be an integer in 1..${defaultCap} (the losses the policy tolerates)`, 'domainCapMax');
  return { pgCount: rules.pgCount, redundancy: { ...r! }, failureDomain: rules.failureDomain, width, domainCapMax: cap };
}

/**
 * Validates a cluster map's structure: epoch, levels, ids (unique), addresses (unique among nodes
 * that are not out), weights, domain paths, states. With `rules`, also checks that the up nodes
 * can hold a stripe: at least `width` of them, and enough failure domains at the rules' level
 * that sum over domains of min(cap, up nodes in it) >= width (the exact condition under which a
 * placement exists). Throws the first problem found as a coded TwError.
 */
export function validateClusterMap(map: ClusterMap, rules?: PlacementRules | NormalizedRules): void {
  if (typeof map !== 'object' || map === null) bad('TW_PLACEMENT_BAD_MAP', 'cluster map is not an object', { field: 'map' });
  if (typeof map.epoch !== 'number' || !Number.isSafeInteger(map.epoch) || map.epoch < 0) {
    bad('TW_PLACEMENT_BAD_MAP', 'epoch must be a non-negative safe integer', { field: 'epoch' });
  }
  const levels = map.domainLevels;
  if (!Array.isArray(levels) || levels.length < 1 || levels.length > DOMAIN_LEVELS_MAX) {
    bad('TW_PLACEMENT_BAD_MAP', `domainLevels must list 1..${DOMAIN_LEVELS_MAX} level names`, { field: 'domainLevels' });
  }
  const seenLevels = new Set<string>();
  for (const level of levels) {
    if (typeof level !== 'string' || level.length > DOMAIN_NAME_MAX_CHARS || !LEVEL_RE.test(level) || seenLevels.has(level)) {
      bad('TW_PLACEMENT_BAD_MAP', `domain level ${JSON.stringify(level)} is invalid or repeated`, { field: 'domainLevels' });
    }
    seenLevels.add(level);
  }
  if (!Array.isArray(map.nodes) || map.nodes.length > NODES_MAX) {
    bad('TW_PLACEMENT_BAD_MAP', `nodes must be an array of at most ${NODES_MAX}`, { field: 'nodes' });
  }
  const ids = new Set<string>();
  const addresses = new Set<string>();
  for (const node of map.nodes) {
    if (typeof node !== 'object' || node === null) bad('TW_PLACEMENT_BAD_MAP', 'a node is not an object', { field: 'nodes' });
    const id = node.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > NODE_ID_MAX_CHARS || !NODE_ID_RE.test(id)) {
      bad('TW_PLACEMENT_BAD_NODE_ID', `node id ${JSON.stringify(typeof id === 'string' ? id.slice(0, 80) : typeof id)} is invalid`, { nodeId: typeof id === 'string' ? id.slice(0, 80) : null });
    }
    if (ids.has(id)) bad('TW_PLACEMENT_DUPLICATE_NODE', `node id ${id} appears twice`, { nodeId: id, field: 'id' });
    ids.add(id);
    if (!NODE_STATES.includes(node.state)) bad('TW_PLACEMENT_BAD_STATE', `node ${id}: state ${JSON.stringify(node.state)} is not up, down, draining or out`, { nodeId: id });
    const address = node.address;
    if (typeof address !== 'string' || address.length === 0 || address.length > ADDRESS_MAX_CHARS || /\s/.test(address)) {
      bad('TW_PLACEMENT_BAD_MAP', `node ${id}: address must be 1-${ADDRESS_MAX_CHARS} characters without spaces`, { nodeId: id, field: 'address' });
    }
    if (node.state !== 'out') {
      if (addresses.has(address)) bad('TW_PLACEMENT_DUPLICATE_NODE', `node ${id}: address ${address} is used by another node`, { nodeId: id, field: 'address' });
      addresses.add(address);
    }
    const w = node.weight;
    if (typeof w !== 'number' || !Number.isFinite(w) || w < WEIGHT_MIN || w > WEIGHT_MAX) {
      bad('TW_PLACEMENT_BAD_WEIGHT', `node ${id}: weight ${String(w)} is not in [${WEIGHT_MIN}, ${WEIGHT_MAX}]`, { nodeId: id, weight: typeof w === 'number' ? w : null });
    }
    checkDomainPath(id, node.domain, levels.length);
  }
  if (rules !== undefined) checkPlaceable(map, 'width' in rules ? rules : normalizeRules(rules));
}

function checkDomainPath(id: string, domain: unknown, levelCount: number): void {
  if (typeof domain !== 'string') bad('TW_PLACEMENT_BAD_DOMAIN', `node ${id}: domain is not a string`, { nodeId: id });
  const segments = (domain as string).split('/');
  if (segments.length !== levelCount) {
    bad('TW_PLACEMENT_BAD_DOMAIN', `node ${id}: domain ${JSON.stringify((domain as string).slice(0, 200))} has ${segments.length} segments, the map has ${levelCount} levels`, { nodeId: id });
  }
  for (const s of segments) {
    if (s.length === 0 || s.length > DOMAIN_NAME_MAX_CHARS || !DOMAIN_SEGMENT_RE.test(s)) {
      bad('TW_PLACEMENT_BAD_DOMAIN', `node ${id}: domain segment ${JSON.stringify(s.slice(0, 80))} is empty or has characters other than A-Z a-z 0-9 . _ -`, { nodeId: id });
    }
  }
}

/**
 * The failure domain of `path` at level index `levelIndex` (0 = outermost): the path up to and
 * including that level.
 */
export function domainAt(path: string, levelIndex: number): string {
  let end = -1;
  for (let i = 0; i <= levelIndex; i++) {
    end = path.indexOf('/', end + 1);
    if (end < 0) return path;
  }
  return path.slice(0, end);
}

/** Index of the rules' failure-domain level in the map; throws TW_PLACEMENT_BAD_RULES when absent. */
export function levelIndexOf(map: ClusterMap, rules: NormalizedRules): number {
  const i = map.domainLevels.indexOf(rules.failureDomain);
  if (i < 0) {
    bad('TW_PLACEMENT_BAD_RULES', `failure domain level ${rules.failureDomain} is not one of the map's levels (${map.domainLevels.join(', ')})`, { field: 'failureDomain' });
  }
  return i;
}

/** Throws TW_PLACEMENT_TOO_FEW_NODES / TW_PLACEMENT_TOO_FEW_DOMAINS when no valid placement exists. */
function checkPlaceable(map: ClusterMap, rules: NormalizedRules): void {
  const level = levelIndexOf(map, rules);
  const perDomain = new Map<string, number>();
  let up = 0;
  for (const node of map.nodes) {
    if (node.state !== 'up') continue;
    up++;
    const d = domainAt(node.domain, level);
    perDomain.set(d, (perDomain.get(d) ?? 0) + 1);
  }
  if (up < rules.width) {
    bad('TW_PLACEMENT_TOO_FEW_NODES', `${up} nodes are up; a stripe needs ${rules.width}`, { upNodes: up, width: rules.width });
  }
  let capacity = 0;
  for (const n of perDomain.values()) capacity += Math.min(n, rules.domainCapMax);
  if (capacity < rules.width) {
    bad(
      'TW_PLACEMENT_TOO_FEW_DOMAINS',
      `${perDomain.size} ${rules.failureDomain} domains with up nodes hold at most ${capacity} fragments of a stripe at ${rules.domainCapMax} per domain; a stripe needs ${rules.width}`,
      { domains: perDomain.size, capacity, width: rules.width, domainCapMax: rules.domainCapMax },
    );
  }
}
