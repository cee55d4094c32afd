import { defineErrors } from '@tw/errors';

export const placementErrors = defineErrors('@tw/placement', {
  TW_PLACEMENT_BAD_MAP: { description: 'The cluster map is malformed (epoch, domain levels, node count or node fields); the details name the field.' },
  TW_PLACEMENT_BAD_NODE_ID: { description: 'A node id is not 1-64 characters of A-Z, a-z, 0-9, ".", "_" or "-".' },
  TW_PLACEMENT_DUPLICATE_NODE: { description: 'Two nodes of the cluster map share an id, or two nodes that are not out share an address.' },
  TW_PLACEMENT_BAD_WEIGHT: { description: 'A node weight is not a finite number within the allowed range (use state out, not weight 0, to empty a node).' },
  TW_PLACEMENT_BAD_DOMAIN: { description: 'A failure-domain path does not have one valid segment per domain level of the map (e.g. zone/rack/host).' },
  TW_PLACEMENT_BAD_STATE: { description: 'A node state is not one of up, down, draining, out.' },
  TW_PLACEMENT_BAD_RULES: { description: 'The placement rules are invalid: PG count, redundancy policy, failure-domain level or domain cap.' },
  TW_PLACEMENT_TOO_FEW_NODES: { description: 'Fewer nodes are up than a stripe has fragments (k + m): bring nodes up or lower the redundancy.' },
  TW_PLACEMENT_TOO_FEW_DOMAINS: { description: 'The up nodes span too few failure domains to place k + m fragments with at most the cap in any one domain.' },
  TW_PLACEMENT_BAD_PG_MAP: { description: 'A stored PG map is malformed or breaks a placement invariant (slot index, repeated node, domain cap); the message says which.' },
  TW_PLACEMENT_BAD_PG: { description: 'A placement group or fragment slot number is out of range for the PG map.' },
});

export type PlacementErrorCode = keyof typeof placementErrors.specs;
