import { xxh64 } from '@node-rs/xxhash';
import { keyHash64 } from '@tw/block-format';
import { placementErrors } from './errors.js';

/*
 * The hashes placement is defined by. Changing any constant or step here remaps every PG: it is
 * a format change, like a checksum algorithm.
 *
 * - Placement group of a key: keyHash64(namespace, key) mod pgCount, where keyHash64 is
 *   @tw/block-format's identity hash (xxh64, seed 0, over `u8 len(ns) | ns | key`), the same hash
 *   fragment headers carry, so a PG can be recomputed from a fragment on disk.
 * - Node hash: xxh64(ASCII bytes of the node id, NODE_HASH_SEED).
 * - Slot hash of (pg, slot): mix64((pg << 32 | slot) XOR SLOT_HASH_SEED).
 * - Draw of (pg, slot, node): z = mix64(nodeHash XOR slotHash); u = (top 53 bits of z + 0.5) / 2^53,
 *   in (0, 1); the rendezvous key is -ln(u) / weight: an exponential variable of rate `weight`,
 *   so the node with the smallest key (equivalently the highest -weight / ln(u)) is node i with
 *   probability weight_i / sum of weights. Ties (never seen in practice) go to the smaller node id.
 * - mix64 is SplitMix64's finalizer (Stafford's Mix13), computed here on two 32-bit halves so the
 *   inner loop allocates no BigInt.
 */

export const NODE_HASH_SEED = 0x74772d6e6f6465n; // "tw-node"
export const SLOT_HASH_SEED = 0x74772d736c6f7473n; // "tw-slots"
const SLOT_SEED_HI = Number(SLOT_HASH_SEED >> 32n) >>> 0;
const SLOT_SEED_LO = Number(SLOT_HASH_SEED & 0xffffffffn) >>> 0;

const TWO_POW_21 = 2097152;
const TWO_POW_53 = 9007199254740992;

/** Placement group of a key: keyHash64(namespace, key) mod pgCount. Validates namespace and key. */
export function pgOf(namespace: string, key: Uint8Array, pgCount: number): number {
  return pgOfKeyHash(keyHash64(namespace, key), pgCount);
}

/** Placement group of a key hash (as carried in fragment headers). */
export function pgOfKeyHash(keyHash: bigint, pgCount: number): number {
  if (!Number.isSafeInteger(pgCount) || pgCount < 1) {
    throw placementErrors.create('TW_PLACEMENT_BAD_PG', `pgCount ${pgCount} is not a positive integer`, { details: { pgCount } });
  }
  return Number(BigInt.asUintN(64, keyHash) % BigInt(pgCount));
}

const encoder = new TextEncoder();

/** The 64-bit hash of a node id (ids are validated ASCII). */
export function nodeHash64(id: string): bigint {
  return xxh64(encoder.encode(id), NODE_HASH_SEED);
}

// Results of mix64(): two 32-bit halves, returned through module state to keep the hot loop
// free of allocations. Read them right after the call.
let mixHi = 0;
let mixLo = 0;

/** High 32 bits of the 64-bit product of two unsigned 32-bit numbers. */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const t1 = a1 * b0 + ((a0 * b0) >>> 16);
  const t2 = a0 * b1 + (t1 & 0xffff);
  return a1 * b1 + (t1 >>> 16) + (t2 >>> 16);
}

/** SplitMix64 finalizer on (hi, lo); result in mixHi / mixLo (unsigned). */
function mix64(hi: number, lo: number): void {
  // z ^= z >>> 30
  lo = (lo ^ ((lo >>> 30) | (hi << 2))) >>> 0;
  hi = (hi ^ (hi >>> 30)) >>> 0;
  // z *= 0xbf58476d1ce4e5b9
  let nlo = Math.imul(lo, 0x1ce4e5b9) >>> 0;
  let nhi = (mulHi32(lo, 0x1ce4e5b9) + Math.imul(lo, 0xbf58476d) + Math.imul(hi, 0x1ce4e5b9)) >>> 0;
  lo = nlo;
  hi = nhi;
  // z ^= z >>> 27
  lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0;
  hi = (hi ^ (hi >>> 27)) >>> 0;
  // z *= 0x94d049bb133111eb
  nlo = Math.imul(lo, 0x133111eb) >>> 0;
  nhi = (mulHi32(lo, 0x133111eb) + Math.imul(lo, 0x94d049bb) + Math.imul(hi, 0x133111eb)) >>> 0;
  lo = nlo;
  hi = nhi;
  // z ^= z >>> 31
  mixLo = (lo ^ ((lo >>> 31) | (hi << 1))) >>> 0;
  mixHi = (hi ^ (hi >>> 31)) >>> 0;
}

/** Slot hash of (pg, slot) as two unsigned 32-bit halves written into `out[0]` (hi), `out[1]` (lo). */
export function slotHash(pg: number, slot: number, out: Uint32Array): void {
  mix64((pg ^ SLOT_SEED_HI) >>> 0, (slot ^ SLOT_SEED_LO) >>> 0);
  out[0] = mixHi;
  out[1] = mixLo;
}

/**
 * -ln(u) for the draw of (slot hash, node hash): an Exp(1) variable; divide by the node's weight
 * for its rendezvous key.
 */
export function drawExp(slotHi: number, slotLo: number, nodeHi: number, nodeLo: number): number {
  // mix64 inlined (the inner loop of every build): no calls, no module state.
  let hi = (slotHi ^ nodeHi) >>> 0;
  let lo = (slotLo ^ nodeLo) >>> 0;
  lo = (lo ^ ((lo >>> 30) | (hi << 2))) >>> 0;
  hi = (hi ^ (hi >>> 30)) >>> 0;
  let a0 = lo & 0xffff;
  let a1 = lo >>> 16;
  let t1 = a1 * 0xe5b9 + ((a0 * 0xe5b9) >>> 16);
  let t2 = a0 * 0x1ce4 + (t1 & 0xffff);
  let mh = a1 * 0x1ce4 + (t1 >>> 16) + (t2 >>> 16);
  let nlo = Math.imul(lo, 0x1ce4e5b9) >>> 0;
  hi = (mh + Math.imul(lo, 0xbf58476d) + Math.imul(hi, 0x1ce4e5b9)) >>> 0;
  lo = nlo;
  lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0;
  hi = (hi ^ (hi >>> 27)) >>> 0;
  a0 = lo & 0xffff;
  a1 = lo >>> 16;
  t1 = a1 * 0x11eb + ((a0 * 0x11eb) >>> 16);
  t2 = a0 * 0x1331 + (t1 & 0xffff);
  mh = a1 * 0x1331 + (t1 >>> 16) + (t2 >>> 16);
  nlo = Math.imul(lo, 0x133111eb) >>> 0;
  hi = (mh + Math.imul(lo, 0x94d049bb) + Math.imul(hi, 0x133111eb)) >>> 0;
  lo = nlo;
  lo = (lo ^ ((lo >>> 31) | (hi << 1))) >>> 0;
  hi = (hi ^ (hi >>> 31)) >>> 0;
  return -Math.log((hi * TWO_POW_21 + (lo >>> 11) + 0.5) / TWO_POW_53);
}
