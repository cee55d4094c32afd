/**
 * Results of applied commands. A result is stored (binary) per (clientId, seq) so that a retried
 * command gets the original answer back: the encoding is part of the replicated state.
 */
import { DecodeError, Reader, Writer } from './bytes.js';
import type { BlockMapErrorCode } from './errors.js';
import { blockMapErrors } from './errors.js';
import type { BlockRef, RetiredBlock } from './types.js';

export interface PurgedBlock extends BlockRef {
  readonly writeVersion: bigint;
  readonly sizeBytes: number;
  readonly fragmentNodes: readonly string[];
}

export type CommandResult =
  | { readonly ok: true; readonly op: 'init-cluster'; readonly epoch: number }
  /** create / update / delete namespace. */
  | { readonly ok: true; readonly op: 'namespace'; readonly name: string }
  | {
      readonly ok: true;
      readonly op: 'commit-blocks';
      /** Version assigned to each record of the batch, in order. */
      readonly versions: readonly number[];
      /** Versions this batch replaced: deleting from now on, purged after the grace period. */
      readonly superseded: readonly RetiredBlock[];
    }
  | { readonly ok: true; readonly op: 'delete-blocks'; readonly deleted: number; readonly missing: number }
  | { readonly ok: true; readonly op: 'touch-blocks'; readonly touched: number }
  /** Purged versions (their fragments may now be tombstoned); refs not purgeable are skipped. */
  | { readonly ok: true; readonly op: 'purge-blocks'; readonly purged: readonly PurgedBlock[]; readonly skipped: number }
  /** register / set state / mark down. `pgMapEpoch`: epoch of the PG map after the command (null: none yet). */
  | { readonly ok: true; readonly op: 'node'; readonly epoch: number; readonly changed: boolean; readonly pgMapEpoch: number | null }
  | { readonly ok: false; readonly code: BlockMapErrorCode; readonly message: string; readonly details: Readonly<Record<string, string | number>> };

export type CommandError = Extract<CommandResult, { ok: false }>;

/** A coded error result; texts are cut to what the stored encoding keeps, so a replayed result is identical. */
export function errorResult(code: BlockMapErrorCode, message: string, details: Record<string, string | number> = {}): CommandError {
  const d: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(details).slice(0, 16)) d[k.slice(0, 64)] = typeof v === 'string' ? v.slice(0, 1000) : v;
  return { ok: false, code, message: message.slice(0, 4000), details: d };
}

const R_ERROR = 0;
const R_INIT = 1;
const R_NAMESPACE = 2;
const R_COMMIT = 3;
const R_DELETE = 4;
const R_TOUCH = 5;
const R_PURGE = 6;
const R_NODE = 7;

function writeNodes(w: Writer, nodes: readonly string[]): void {
  w.u8(nodes.length);
  for (const n of nodes) w.str8(n);
}

function readNodes(r: Reader): string[] {
  const out: string[] = [];
  for (let i = r.u8(); i > 0; i--) out.push(r.str8());
  return out;
}

export function encodeResult(res: CommandResult): Uint8Array {
  const w = new Writer(64);
  if (!res.ok) {
    w.u8(R_ERROR).str8(res.code).str16(res.message);
    const entries = Object.entries(res.details);
    w.u8(entries.length);
    for (const [k, v] of entries) {
      w.str8(k);
      if (typeof v === 'number') w.u8(0).f64(v);
      else w.u8(1).str16(v);
    }
    return w.finish();
  }
  switch (res.op) {
    case 'init-cluster':
      return w.u8(R_INIT).u64(res.epoch).finish();
    case 'namespace':
      return w.u8(R_NAMESPACE).str8(res.name).finish();
    case 'commit-blocks':
      w.u8(R_COMMIT).u32(res.versions.length);
      for (const v of res.versions) w.u64(v);
      w.u32(res.superseded.length);
      for (const s of res.superseded) {
        w.bytes16(s.key).u64(s.version).big64(s.writeVersion).u64(s.sizeBytes);
        writeNodes(w, s.fragmentNodes);
      }
      return w.finish();
    case 'delete-blocks':
      return w.u8(R_DELETE).u32(res.deleted).u32(res.missing).finish();
    case 'touch-blocks':
      return w.u8(R_TOUCH).u32(res.touched).finish();
    case 'purge-blocks':
      w.u8(R_PURGE).u32(res.skipped).u32(res.purged.length);
      for (const p of res.purged) {
        w.str8(p.namespace).bytes16(p.key).u64(p.version).big64(p.writeVersion).u64(p.sizeBytes);
        writeNodes(w, p.fragmentNodes);
      }
      return w.finish();
    case 'node':
      return w.u8(R_NODE).u64(res.epoch).bool(res.changed).bool(res.pgMapEpoch !== null).u64(res.pgMapEpoch ?? 0).finish();
  }
}

export function decodeResult(bytes: Uint8Array): CommandResult {
  const r = new Reader(bytes);
  const kind = r.u8();
  let res: CommandResult;
  switch (kind) {
    case R_ERROR: {
      const code = r.str8();
      if (!(code in blockMapErrors.specs)) throw new DecodeError(`unknown result code ${code}`);
      const message = r.str16();
      const details: Record<string, string | number> = {};
      for (let i = r.u8(); i > 0; i--) {
        const k = r.str8();
        details[k] = r.u8() === 0 ? r.f64() : r.str16();
      }
      res = { ok: false, code: code as BlockMapErrorCode, message, details };
      break;
    }
    case R_INIT:
      res = { ok: true, op: 'init-cluster', epoch: r.u64() };
      break;
    case R_NAMESPACE:
      res = { ok: true, op: 'namespace', name: r.str8() };
      break;
    case R_COMMIT: {
      const versions: number[] = [];
      for (let i = r.u32(); i > 0; i--) versions.push(r.u64());
      const superseded: RetiredBlock[] = [];
      for (let i = r.u32(); i > 0; i--) superseded.push({ key: r.bytes16().slice(), version: r.u64(), writeVersion: r.big64(), sizeBytes: r.u64(), fragmentNodes: readNodes(r) });
      res = { ok: true, op: 'commit-blocks', versions, superseded };
      break;
    }
    case R_DELETE:
      res = { ok: true, op: 'delete-blocks', deleted: r.u32(), missing: r.u32() };
      break;
    case R_TOUCH:
      res = { ok: true, op: 'touch-blocks', touched: r.u32() };
      break;
    case R_PURGE: {
      const skipped = r.u32();
      const purged: PurgedBlock[] = [];
      for (let i = r.u32(); i > 0; i--) purged.push({ namespace: r.str8(), key: r.bytes16().slice(), version: r.u64(), writeVersion: r.big64(), sizeBytes: r.u64(), fragmentNodes: readNodes(r) });
      res = { ok: true, op: 'purge-blocks', purged, skipped };
      break;
    }
    case R_NODE: {
      const epoch = r.u64();
      const changed = r.bool();
      const has = r.bool();
      const pgEpoch = r.u64();
      res = { ok: true, op: 'node', epoch, changed, pgMapEpoch: has ? pgEpoch : null };
      break;
    }
    default:
      throw new DecodeError(`result kind ${kind}`);
  }
  r.end();
  return res;
}
