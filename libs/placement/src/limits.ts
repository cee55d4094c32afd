/** Bounds of the cluster map and the PG map. */

/** Most nodes (of any state) in one cluster map. */
export const NODES_MAX = 10_000;
/** Most placement groups; PG_COUNT is fixed at cluster creation (typically 4096). */
export const PG_COUNT_MAX = 1 << 18;
/** Longest node id, in characters (ASCII: A-Z a-z 0-9 . _ -). */
export const NODE_ID_MAX_CHARS = 64;
/** Longest node address (host:port or a URL; opaque to placement), in characters. */
export const ADDRESS_MAX_CHARS = 256;
/** Most failure-domain levels (e.g. zone / rack / host). */
export const DOMAIN_LEVELS_MAX = 8;
/** Longest failure-domain level name and path segment, in characters. */
export const DOMAIN_NAME_MAX_CHARS = 64;
/** Heaviest node weight; weights are relative (e.g. capacity in TiB), any finite value in (0, max]. */
export const WEIGHT_MAX = 1e9;
/** Lightest node weight, so that -ln(u) / weight stays finite. */
export const WEIGHT_MIN = 1e-6;
/** Most candidates `nextCandidates` returns. */
export const CANDIDATES_MAX = 1024;
