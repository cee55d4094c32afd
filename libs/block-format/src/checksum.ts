import { Xxh64, xxh64 } from '@node-rs/xxhash';

/**
 * The checksum of every block payload, fragment and extent record: xxh64 with seed 0, as an
 * unsigned 64-bit bigint. Chosen over crc32 by measurement (docs/checksum.md, `npm run bench --
 * checksum`): about twice crc32's throughput here, and 64 bits make an undetected corruption far
 * less likely than 32 would.
 */
export function checksum64(bytes: Uint8Array): bigint {
  return xxh64(bytes, 0n);
}

/** Checksum of several byte ranges as if concatenated (streaming; no copy). */
export function checksum64Parts(parts: readonly Uint8Array[]): bigint {
  if (parts.length === 1) return checksum64(parts[0]!);
  const h = new Xxh64(0n);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Incremental xxh64 for data that arrives in pieces. */
export class Checksum64Stream {
  readonly #h = new Xxh64(0n);
  update(bytes: Uint8Array): this {
    this.#h.update(bytes);
    return this;
  }
  digest(): bigint {
    return this.#h.digest();
  }
}
