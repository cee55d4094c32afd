import { type BlockMap, FRAGMENT_CHECK_MAX, type FragmentLiveness, type FragmentRef } from '@tw/block-map';
import type { CheckFragmentsRequestMsg, CheckFragmentsResponseMsg, FragmentLivenessName, ReportBadFragmentsRequestMsg, ReportBadFragmentsResponseMsg } from '@tw/rpc';
import type { BadFragmentInput, BadFragmentLog } from './bad-fragment-log.js';
import { u64 } from './convert.js';
import { coordinatorErrors } from './errors.js';

/** Most reports in one ReportBadFragments call. */
export const BAD_FRAGMENT_REPORTS_MAX = 1024;
const DETAIL_CHARS_MAX = 256;
const REASONS = new Set(['missing', 'corrupt', 'unreachable', 'error', 'inconsistent']);
/** Sample entries named in the log line of one report call. */
const LOGGED_PER_CALL_MAX = 8;

const LIVENESS: Record<FragmentLiveness, FragmentLivenessName> = {
  live: 'FRAGMENT_LIVENESS_LIVE',
  dead: 'FRAGMENT_LIVENESS_DEAD',
  unknown: 'FRAGMENT_LIVENESS_UNKNOWN',
};

/** A decimal uint64 from the wire as a bigint (fragment versions use all 64 bits). */
function version64(field: string, s: string): bigint {
  if (!/^\d{1,20}$/.test(s) || BigInt(s) >= 1n << 64n) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `${field} must be an unsigned 64-bit integer`);
  return BigInt(s);
}

/** CheckFragments after the read barrier: validates, asks the block map, tallies the answers. */
export async function checkFragmentsImpl(
  req: CheckFragmentsRequestMsg,
  map: BlockMap,
  tally: { live: number; dead: number; unknown: number },
): Promise<Omit<CheckFragmentsResponseMsg, 'appliedIndex'>> {
  if (req.nodeId === '') throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', 'checkFragments needs nodeId');
  if (req.fragments.length > FRAGMENT_CHECK_MAX) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `checkFragments takes at most ${FRAGMENT_CHECK_MAX} fragments, got ${req.fragments.length}`);
  const refs: FragmentRef[] = req.fragments.map((f, i) => ({ namespace: f.namespace, key: f.key, version: version64(`fragments[${i}].version`, f.version), index: f.index }));
  const res = await map.checkFragments(req.nodeId, refs);
  for (const l of res.liveness) tally[l]++;
  return { liveness: res.liveness.map((l) => LIVENESS[l]), nodeRegisteredAtMs: String(res.nodeRegisteredAtMs) };
}

type Log = { warn(o: object, m: string): void } | undefined;

/** ReportBadFragments on the leader: validates, records, logs the fragments not seen before. */
export function reportBadFragmentsImpl(req: ReportBadFragmentsRequestMsg, log: BadFragmentLog, logger: Log): ReportBadFragmentsResponseMsg {
  if (req.reports.length > BAD_FRAGMENT_REPORTS_MAX) throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `reportBadFragments takes at most ${BAD_FRAGMENT_REPORTS_MAX} reports, got ${req.reports.length}`);
  const inputs: BadFragmentInput[] = req.reports.map((r, i) => {
    if (r.namespace === '' || r.key.length === 0 || r.nodeId === '') throw coordinatorErrors.create('TW_COORD_BAD_REQUEST', `reports[${i}] needs namespace, key and nodeId`);
    return {
      namespace: r.namespace.slice(0, 64),
      key: Buffer.from(r.key.subarray(0, 512)),
      version: version64(`reports[${i}].version`, r.version),
      index: r.index,
      nodeId: r.nodeId.slice(0, 64),
      reason: REASONS.has(r.reason) ? r.reason : 'other',
      detail: r.detail.slice(0, DETAIL_CHARS_MAX),
      count: Math.max(1, r.count),
    };
  });
  const gateway = req.gatewayId.slice(0, 128) || 'unknown';
  const dropped = u64('dropped', req.dropped);
  const fresh = log.record(gateway, inputs, dropped);
  if (fresh.length > 0 || dropped > 0) {
    logger?.warn(
      {
        gateway,
        reports: inputs.length,
        newFragments: fresh.length,
        droppedByGateway: dropped,
        sample: fresh.slice(0, LOGGED_PER_CALL_MAX).map((e) => ({ namespace: e.namespace, key: printable(e.key), version: String(e.version), index: e.index, node: e.nodeId, reason: e.reason, detail: e.detail })),
      },
      'bad fragments reported',
    );
  }
  return { accepted: inputs.length };
}

function printable(key: Buffer): string {
  const s = key.toString('latin1');
  return /^[\x20-\x7e]*$/.test(s) ? s.slice(0, 80) : `0x${key.subarray(0, 40).toString('hex')}`;
}
