import { blockFormatErrors } from './errors.js';
import { KEY_MAX_BYTES } from './limits.js';

/**
 * LMCache cache-key shapes, parsed for indexing and metrics only: identity is always the raw
 * key bytes (ARCHITECTURE.md section 3). Shapes (research/engines-and-protocols.md 1.2):
 *
 * - MP-mode `ObjectKey`: `model@kv_rank(8 hex)@chunk_hash(hex)[@salt]`, where
 *   kv_rank = world_size << 24 | global_rank << 16 | local_world_size << 8 | local_rank;
 * - in-process (v0 .. v0.3): `fmt@model@world_size@worker_id@chunk_hash[@dtype][@layer_id][@tag%val...]`,
 *   chunk_hash in hex (may be negative: Python's hash()) or decimal.
 *
 * LMCache's Python redis connector appends `kv_bytes` or `metadata` to a key to store a chunk as
 * two Redis keys; that suffix is reported as `role`.
 */
export type LmcacheKey =
  | {
      readonly shape: 'object-key';
      readonly model: string;
      readonly kvRank: number;
      readonly worldSize: number;
      readonly globalRank: number;
      readonly localWorldSize: number;
      readonly localRank: number;
      readonly chunkHash: string;
      readonly salt?: string;
      readonly role?: LmcacheKeyRole;
    }
  | {
      readonly shape: 'engine-key';
      readonly fmt: string;
      readonly model: string;
      readonly worldSize: number;
      readonly workerId: number;
      readonly chunkHash: string;
      readonly dtype?: string;
      readonly layerId?: number;
      readonly tags: Readonly<Record<string, string>>;
      readonly role?: LmcacheKeyRole;
    };

export type LmcacheKeyRole = 'kv_bytes' | 'metadata';

const HEX = /^-?[0-9a-f]+$/i;
const DEC = /^\d{1,9}$/;
const RANK = /^[0-9a-f]{8}$/i;
const DTYPE = /^[a-z][a-z0-9_]*$/;

/** Parses an LMCache key string; throws TW_LMCACHE_KEY_INVALID for anything else. */
export function parseLmcacheKey(input: string): LmcacheKey {
  if (typeof input !== 'string' || input.length === 0 || Buffer.byteLength(input, 'utf8') > KEY_MAX_BYTES) fail(input, 'empty or too long');
  let text = input;
  let role: LmcacheKeyRole | undefined;
  for (const suffix of ['kv_bytes', 'metadata'] as const) {
    if (text.endsWith(suffix)) {
      role = suffix;
      text = text.slice(0, -suffix.length);
      break;
    }
  }
  const parts = text.split('@');
  if (parts.some((p) => p.length === 0)) fail(input, 'empty field');
  if ((parts.length === 3 || parts.length === 4) && RANK.test(parts[1]!) && HEX.test(parts[2]!) && !parts[2]!.startsWith('-')) {
    const kvRank = Number.parseInt(parts[1]!, 16);
    const key = {
      shape: 'object-key' as const,
      model: parts[0]!,
      kvRank,
      worldSize: (kvRank >>> 24) & 0xff,
      globalRank: (kvRank >>> 16) & 0xff,
      localWorldSize: (kvRank >>> 8) & 0xff,
      localRank: kvRank & 0xff,
      chunkHash: parts[2]!.toLowerCase(),
    };
    return { ...key, ...(parts[3] === undefined ? {} : { salt: parts[3] }), ...(role === undefined ? {} : { role }) };
  }
  if (parts.length >= 5 && DEC.test(parts[2]!) && DEC.test(parts[3]!) && HEX.test(parts[4]!)) {
    let dtype: string | undefined;
    let layerId: number | undefined;
    const tags: Record<string, string> = {};
    let i = 5;
    if (i < parts.length && DTYPE.test(parts[i]!) && !parts[i]!.includes('%')) dtype = parts[i++];
    if (dtype !== undefined && i < parts.length && DEC.test(parts[i]!)) layerId = Number(parts[i++]);
    for (; i < parts.length; i++) {
      const p = parts[i]!;
      const at = p.indexOf('%');
      if (at <= 0) fail(input, `field ${i} is neither dtype, layer id nor tag%value`);
      tags[p.slice(0, at)] = p.slice(at + 1);
    }
    return {
      shape: 'engine-key',
      fmt: parts[0]!,
      model: parts[1]!,
      worldSize: Number(parts[2]),
      workerId: Number(parts[3]),
      chunkHash: parts[4]!.toLowerCase(),
      ...(dtype === undefined ? {} : { dtype }),
      ...(layerId === undefined ? {} : { layerId }),
      tags,
      ...(role === undefined ? {} : { role }),
    };
  }
  return fail(input, 'not an LMCache key shape');
}

function fail(input: unknown, why: string): never {
  const shown = typeof input === 'string' ? input.slice(0, 120) : typeof input;
  throw blockFormatErrors.create('TW_LMCACHE_KEY_INVALID', `${JSON.stringify(shown)} is not an LMCache key: ${why}`);
}
