import { blockFormatErrors } from './errors.js';
import { EC_K_MAX, EC_M_MAX, PAYLOAD_MAX_BYTES, REPLICAS_MAX } from './limits.js';

/** How a block is made redundant. `none` is `ec` with k = 1, m = 0 on the wire. */
export type Redundancy =
  | { readonly kind: 'ec'; readonly k: number; readonly m: number }
  | { readonly kind: 'replicate'; readonly n: number }
  | { readonly kind: 'none' };

/** Fragments stored per block. */
export function fragmentCount(r: Redundancy): number {
  switch (r.kind) {
    case 'ec':
      return r.k + r.m;
    case 'replicate':
      return r.n;
    case 'none':
      return 1;
  }
}

/** Fragments needed to rebuild the block. */
export function fragmentsNeeded(r: Redundancy): number {
  return r.kind === 'ec' ? r.k : 1;
}

/** Fragments that may be lost without losing the block. */
export function lossesTolerated(r: Redundancy): number {
  return fragmentCount(r) - fragmentsNeeded(r);
}

/** Throws TW_HEADER_INVALID unless the policy is within the supported bounds. */
export function validateRedundancy(r: Redundancy): void {
  const bad = (why: string): never => {
    throw blockFormatErrors.create('TW_HEADER_INVALID', `redundancy ${formatRedundancy(r)}: ${why}`, { details: { field: 'redundancy' } });
  };
  if (r.kind === 'ec') {
    if (!Number.isInteger(r.k) || r.k < 1 || r.k > EC_K_MAX) bad(`k must be 1..${EC_K_MAX}`);
    if (!Number.isInteger(r.m) || r.m < 1 || r.m > EC_M_MAX) bad(`m must be 1..${EC_M_MAX}`);
  } else if (r.kind === 'replicate') {
    if (!Number.isInteger(r.n) || r.n < 1 || r.n > REPLICAS_MAX) bad(`n must be 1..${REPLICAS_MAX}`);
  } else if (r.kind !== 'none') {
    bad('unknown kind');
  }
}

/** `ec:4+2`, `replicate:3`, `none`. */
export function formatRedundancy(r: Redundancy): string {
  switch (r.kind) {
    case 'ec':
      return `ec:${r.k}+${r.m}`;
    case 'replicate':
      return `replicate:${r.n}`;
    case 'none':
      return 'none';
    default:
      return 'unknown';
  }
}

/** Parses `ec:K+M`, `replicate:N` or `none`; throws TW_HEADER_INVALID on anything else. */
export function parseRedundancy(text: string): Redundancy {
  let r: Redundancy | undefined;
  const ec = /^ec:(\d{1,2})\+(\d{1,2})$/.exec(text);
  const rep = /^replicate:(\d{1,2})$/.exec(text);
  if (ec) r = { kind: 'ec', k: Number(ec[1]), m: Number(ec[2]) };
  else if (rep) r = { kind: 'replicate', n: Number(rep[1]) };
  else if (text === 'none') r = { kind: 'none' };
  if (r === undefined) {
    throw blockFormatErrors.create('TW_HEADER_INVALID', `redundancy ${JSON.stringify(text.slice(0, 40))} is not ec:K+M, replicate:N or none`, {
      details: { field: 'redundancy' },
    });
  }
  validateRedundancy(r);
  return r;
}

/**
 * Bytes in each fragment of a payload: for ec, ceil(payload / k) rounded up to a multiple of 8
 * (the Reed-Solomon codec works on 8-byte words) and at least 8; for replicate / none, the
 * payload itself.
 */
export function fragmentBytes(r: Redundancy, payloadBytes: number): number {
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > PAYLOAD_MAX_BYTES) {
    throw blockFormatErrors.create('TW_HEADER_INVALID', `payload length ${payloadBytes} is out of range`, { details: { field: 'payloadLength' } });
  }
  if (r.kind !== 'ec') return payloadBytes;
  const per = Math.ceil(payloadBytes / r.k);
  return Math.max(8, Math.ceil(per / 8) * 8);
}
