/** Bounds of the on-disk and on-wire formats. Changing one is a format change. */

/** Longest key, in bytes (ARCHITECTURE.md section 3). */
export const KEY_MAX_BYTES = 512;
/** Longest namespace name, in characters (ASCII only). */
export const NAMESPACE_MAX_CHARS = 63;
/** Longest model id in a KV layout, in UTF-8 bytes. */
export const MODEL_ID_MAX_BYTES = 256;
/** Largest block payload: 2^40 bytes (1 TiB) keeps every length exact in a JS number. */
export const PAYLOAD_MAX_BYTES = 2 ** 40;
/** Largest single fragment: 4 GiB - 1, so fragment lengths fit u32. */
export const FRAGMENT_MAX_BYTES = 2 ** 32 - 1;
/** Erasure-coding bounds: ec:k+m with k <= 16, m <= 4; replicate:n with n <= 8. */
export const EC_K_MAX = 16;
export const EC_M_MAX = 4;
export const REPLICAS_MAX = 8;
