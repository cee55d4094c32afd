/**
 * @tw/placement: where the fragments of a block live (ARCHITECTURE.md section 3).
 *
 * - `pgOf(namespace, key, pgCount)`: the placement group of a key.
 * - `ClusterMap`: nodes (id, address, failure-domain path, weight, state) and an epoch;
 *   `validateClusterMap` checks it (and, given rules, that a stripe can be placed at all).
 * - `buildPgMap(map, rules)`: for each PG an ordered list of k + m distinct up nodes, chosen per
 *   slot by weighted rendezvous hashing under failure-domain caps.
 * - `rebuildPgMap(prev, map)`: the same after a membership change, moving only affected slots.
 * - `nextCandidates(pgMap, pg, slot)`: where a slot goes next (repair, hedged reads).
 * - `pgMapToJson` / `pgMapFromJson`: the PG map is state (a rebuild depends on the previous
 *   one), so the coordinators persist it; reading it back checks every invariant.
 *
 * Pure: no I/O, no clock, no randomness; the same inputs always give the same PG map.
 */
export { placementErrors, type PlacementErrorCode } from './errors.js';
export * from './limits.js';
export {
  type ClusterMap,
  type ClusterNode,
  type NodeState,
  type PlacementRules,
  type PlacementRedundancy,
  type NormalizedRules,
  NODE_STATES,
  validateClusterMap,
  normalizeRules,
  domainAt,
} from './cluster-map.js';
export { pgOf, pgOfKeyHash, nodeHash64, slotHash, drawExp, NODE_HASH_SEED, SLOT_HASH_SEED } from './hash.js';
export {
  type PgMap,
  type PgMapNode,
  type SlotMove,
  buildPgMap,
  rebuildPgMap,
  pgNodes,
  nextCandidates,
  pgMapMoves,
  slotCounts,
} from './pg-map.js';
export { type PgMapJson, pgMapToJson, pgMapFromJson } from './pg-map-json.js';
