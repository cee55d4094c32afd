import type { TwError } from '@tw/errors';
import type { ClusterMapMsg, CoordinatorUnary } from '@tw/rpc';

/** The coordinator calls the gateway makes. */
export type GatewayCoordinatorMethod = 'lookupPrefix' | 'commitBlocks' | 'deleteBlocks' | 'reportBadFragments';

/**
 * The narrow view of the coordinator group the gateway needs; @tw/rpc's CoordinatorClient
 * satisfies it (leader following, retries, request ids), and tests may pass anything else.
 */
export interface GatewayCoordinator {
  call<M extends GatewayCoordinatorMethod>(method: M, request: CoordinatorUnary[M][0], options?: { signal?: AbortSignal }): Promise<CoordinatorUnary[M][1]>;
  /** Streams cluster maps (current one first); returns a stop function. */
  watchClusterMap(onMap: (map: ClusterMapMsg) => void, onError?: (err: TwError) => void): () => void;
}
