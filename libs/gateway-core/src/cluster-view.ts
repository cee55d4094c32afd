import { isTwError } from '@tw/errors';
import { type PgMap, pgMapFromJson } from '@tw/placement';
import type { ClusterMapMsg } from '@tw/rpc';
import { gatewayErrors } from './errors.js';

/** What the gateway knows of the cluster at one epoch. */
export interface ClusterView {
  readonly epoch: number;
  /** Node id -> data-plane address, for every node in the map (any state). */
  readonly addresses: ReadonlyMap<string, string>;
  /** Node id -> state (`up`, `down`, `draining`, `out`). */
  readonly states: ReadonlyMap<string, string>;
  /** Null when the coordinators have no PG map yet (too few nodes). */
  readonly pgMap: PgMap | null;
}

/**
 * The default decoding of ClusterMap.pg_map: the UTF-8 JSON of placement's `pgMapToJson`
 * (placement has no binary form yet); empty bytes mean no PG map.
 */
export function decodePgMapJsonBytes(bytes: Uint8Array): PgMap | null {
  if (bytes.byteLength === 0) return null;
  return pgMapFromJson(JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')));
}

export function clusterViewOf(msg: ClusterMapMsg, decodePgMap: (bytes: Uint8Array) => PgMap | null): ClusterView {
  const addresses = new Map<string, string>();
  const states = new Map<string, string>();
  for (const n of msg.nodes) {
    addresses.set(n.nodeId, n.dataAddress);
    states.set(n.nodeId, n.state);
  }
  let pgMap: PgMap | null;
  try {
    pgMap = decodePgMap(msg.pgMap ?? new Uint8Array(0));
  } catch (err) {
    throw gatewayErrors.create('TW_GATEWAY_NO_PLACEMENT', `cluster map epoch ${msg.epoch}: the PG map does not decode: ${(err as Error).message}`, {
      cause: err,
      details: isTwError(err) ? { code: err.code } : {},
    });
  }
  return { epoch: Number(msg.epoch), addresses, states, pgMap };
}
