/**
 * Block versions chosen by the writing gateway, before any fragment is stored (fragments are
 * named by (namespace, key, version, index), so the version must exist before the commit).
 *
 * Layout of the 64-bit version: `timeMs (42 bits) << 22 | writerTag (22 bits)`, made strictly
 * increasing per gateway (`max(last + 1, ...)`). The writer tag is random per gateway instance, so
 * two gateways collide only when they write the same key in the same millisecond with equal
 * tags (2^-22); even then the coordinators' record names one version and the end-to-end payload
 * checksum refuses any mixed stripe, so a collision can cost a block, never return wrong bytes.
 * 42 bits of milliseconds last until the year 2109.
 */
export class VersionClock {
  #last = 0n;
  readonly #tag: bigint;

  constructor(
    private readonly nowMs: () => number,
    writerTag: number,
  ) {
    this.#tag = BigInt(writerTag >>> 0) & 0x3f_ffffn;
  }

  next(): bigint {
    const candidate = (BigInt(Math.max(0, Math.floor(this.nowMs()))) << 22n) | this.#tag;
    this.#last = candidate > this.#last ? candidate : this.#last + 1n;
    return this.#last;
  }
}
