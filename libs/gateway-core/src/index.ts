/**
 * @tw/gateway-core: the gateway's data path, independent of any front-end (ARCHITECTURE.md
 * section 4). `createGateway(options, { transport, coordinator })` -> `Gateway` with put / get /
 * mget / lookupPrefix / delete; front-ends (HTTP, RESP, lm://, native) and apps/gateway call it.
 */
export { gatewayErrors, type GatewayErrorCode } from './errors.js';
export * from './limits.js';
export type { GatewayCoordinator, GatewayCoordinatorMethod } from './coordinator.js';
export { type ClusterView, decodePgMapJsonBytes } from './cluster-view.js';
export type { GatewayRecord } from './record.js';
export type { BadFragment, BadFragmentReason, BlockParts } from './read-path.js';
export { VersionClock } from './version-clock.js';
export { ByteBudget } from './byte-budget.js';
export { CommitBatcher } from './commit-batcher.js';
export { LookupBatcher } from './lookup-batcher.js';
export {
  type Gateway,
  type GatewayOptions,
  type GatewayComponents,
  type GatewayHooks,
  type GatewayStats,
  type PutOptions,
  type PutResult,
  type CommitOutcome,
  type GetOptions,
  type LookupOptions,
  type LookupResult,
  createGateway,
} from './gateway.js';
export { BadFragmentReporter, type BadFragmentReporterOptions, type BadFragmentReporterStats } from './bad-fragment-reporter.js';
