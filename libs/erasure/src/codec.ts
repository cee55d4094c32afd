import { type Redundancy, fragmentBytes, fragmentCount, fragmentsNeeded, formatRedundancy, validateRedundancy } from '@tw/block-format';

/**
 * One interface for every redundancy policy: `ec:k+m` (Reed-Solomon), `replicate:n` and `none`.
 *
 * Ownership: `encode` may return fragments that are views of the caller's payload (when no
 * padding is needed, and always for replication); the caller must not modify the payload while
 * the fragments are in use. `reconstruct` never modifies the fragments it is given.
 */
export interface ErasureCodec {
  readonly redundancy: Redundancy;
  /** k + m, n or 1. */
  readonly fragmentCount: number;
  /** Fragments needed to rebuild: k, or 1. */
  readonly fragmentsNeeded: number;
  /** Bytes in each fragment of a `payloadBytes` payload. */
  fragmentBytes(payloadBytes: number): number;
  /**
   * Splits `payload` into `fragmentCount` fragments, index i = fragment i (data 0..k-1, then
   * parity). Reed-Solomon runs on libuv's thread pool, off the event loop.
   */
  encode(payload: Uint8Array, signal?: AbortSignal): Promise<Buffer[]>;
  /**
   * Like `encode`, but writes the parity fragments into the caller's `parity` buffers (m of
   * them, each `fragmentBytes(payload.byteLength)` long; none for replicate / none), so a data
   * path that pools its buffers allocates nothing per block. Returns all fragments: data
   * fragments as views of the payload (or of a padded copy), then the `parity` buffers.
   */
  encodeInto(payload: Uint8Array, parity: readonly Uint8Array[], signal?: AbortSignal): Promise<Buffer[]>;
  /**
   * Rebuilds the payload from any `fragmentsNeeded` fragments; missing ones are `undefined`.
   * Writes into `dest` when given (at least `payloadBytes` long) and returns the view of it that
   * holds the payload. Throws TW_ERASURE_TOO_FEW_FRAGMENTS when too many are missing.
   */
  reconstruct(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, options?: { dest?: Buffer; signal?: AbortSignal }): Promise<Buffer>;
  /**
   * Recomputes the fragments at `indexes` (for repair) from the surviving ones. Returns them in
   * the order of `indexes`.
   */
  rebuildFragments(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, indexes: readonly number[], signal?: AbortSignal): Promise<Buffer[]>;
}

export function describeCodec(c: ErasureCodec): string {
  return formatRedundancy(c.redundancy);
}

/** Common argument checks of every codec. */
export function checkCommon(r: Redundancy): { count: number; needed: number } {
  validateRedundancy(r);
  return { count: fragmentCount(r), needed: fragmentsNeeded(r) };
}

export { fragmentBytes };
