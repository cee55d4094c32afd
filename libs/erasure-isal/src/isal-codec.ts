import { type Redundancy, fragmentBytes, formatRedundancy, validateRedundancy } from '@tw/block-format';
import { type ErasureCodec, createCodec, erasureErrors } from '@tw/erasure';
import { type IsalContext, allocCodingBuffer, isal, isalCreate, isalRun } from './binding.js';

/**
 * Returns a codec with the interface, fragment layout and error codes of @tw/erasure's
 * `createCodec`, whose `ec:k+m` runs on Intel ISA-L. `replicate:n` and `none` have nothing to
 * code and are served by @tw/erasure's copy codec. Throws TW_ISAL_UNAVAILABLE when the addon
 * cannot be used here (check `isalAvailable()` first to fall back).
 *
 * Parity: systematic Reed-Solomon over GF(2^8) (polynomial 0x11d) with ISA-L's Cauchy generator
 * (gf_gen_cauchy1_matrix: parity row i, column j is 1 / (i xor j) for i in k..k+m-1). It is not
 * byte-identical to @ronomon/reed-solomon's parity: fragments of one block must be coded and
 * decoded by the same backend. Data fragments are identical in both.
 */
export function createIsalCodec(redundancy: Redundancy & { kind: 'ec' }): IsalErasureCodec;
export function createIsalCodec(redundancy: Redundancy): ErasureCodec;
export function createIsalCodec(redundancy: Redundancy): ErasureCodec {
  try {
    validateRedundancy(redundancy);
  } catch (err) {
    throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `unsupported redundancy ${formatRedundancy(redundancy)}`, { cause: err });
  }
  if (redundancy.kind !== 'ec') return createCodec(redundancy);
  return new IsalCodec(redundancy.k, redundancy.m, contextFor(redundancy.k, redundancy.m));
}

const contexts = new Map<string, IsalContext>();
function contextFor(k: number, m: number): IsalContext {
  isal(); // throws TW_ISAL_UNAVAILABLE before anything else
  const key = `${k}+${m}`;
  let ctx = contexts.get(key);
  if (ctx === undefined) {
    ctx = isalCreate(k, m);
    contexts.set(key, ctx);
  }
  return ctx;
}

/** The ISA-L `ec:k+m` codec: ErasureCodec plus an encode into caller-owned (pooled) parity. */
export interface IsalErasureCodec extends ErasureCodec {
  /**
   * Like `encode`, but writes the m parity fragments into `parity` (m buffers of
   * `fragmentBytes(payload.byteLength)` bytes each, owned by the caller, overlapping neither
   * each other nor the payload) instead of allocating them: fresh memory costs a page fault per
   * 4 KiB on first touch, which costs more than the coding itself. Returns the k + m fragments;
   * data fragments are views of the payload where no padding is needed, parity are `parity`.
   */
  encodeInto(payload: Uint8Array, parity: readonly Uint8Array[], signal?: AbortSignal): Promise<Buffer[]>;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw erasureErrors.create('TW_ERASURE_ABORTED', 'erasure operation aborted', { cause: signal.reason });
}

function checkPayloadBytes(payloadBytes: number): void {
  if (!Number.isSafeInteger(payloadBytes) || payloadBytes < 0) {
    throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `payload length ${payloadBytes} is not a non-negative integer`);
  }
}

/**
 * `ec:k+m` over ISA-L. ISA-L takes one pointer per fragment, so nothing needs to be contiguous:
 * encode returns views of the payload for every data fragment that lies wholly inside it (only
 * the padded tail is copied), and decode reads the caller's surviving fragments in place and
 * writes missing data fragments straight into the destination.
 */
class IsalCodec implements IsalErasureCodec {
  readonly redundancy: Redundancy;
  readonly fragmentCount: number;
  readonly fragmentsNeeded: number;

  constructor(
    readonly k: number,
    readonly m: number,
    private readonly ctx: IsalContext,
  ) {
    this.redundancy = { kind: 'ec', k, m };
    this.fragmentCount = k + m;
    this.fragmentsNeeded = k;
  }

  fragmentBytes(payloadBytes: number): number {
    return fragmentBytes(this.redundancy, payloadBytes);
  }

  async encode(payload: Uint8Array, signal?: AbortSignal): Promise<Buffer[]> {
    checkAborted(signal);
    const shard = this.fragmentBytes(payload.byteLength);
    const parityBytes = allocCodingBuffer(this.m * shard);
    const parity: Buffer[] = [];
    for (let i = 0; i < this.m; i++) parity.push(parityBytes.subarray(i * shard, (i + 1) * shard));
    return this.#encode(payload, shard, parity, signal);
  }

  async encodeInto(payload: Uint8Array, parity: readonly Uint8Array[], signal?: AbortSignal): Promise<Buffer[]> {
    checkAborted(signal);
    const shard = this.fragmentBytes(payload.byteLength);
    if (parity.length !== this.m) throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `expected ${this.m} parity buffers, got ${parity.length}`);
    parity.forEach((p, i) => {
      if (p.byteLength !== shard) {
        throw erasureErrors.create('TW_ERASURE_FRAGMENT_SIZE', `parity buffer ${i} has ${p.byteLength} bytes, expected ${shard}`, {
          details: { fragmentIndex: this.k + i, lengthBytes: p.byteLength, expectedBytes: shard },
        });
      }
    });
    return this.#encode(payload, shard, parity.map(asBuffer), signal);
  }

  async #encode(payload: Uint8Array, shard: number, parity: Buffer[], signal: AbortSignal | undefined): Promise<Buffer[]> {
    const src = asBuffer(payload);
    const whole = Math.min(this.k, Math.floor(src.length / shard));
    const data: Buffer[] = [];
    for (let i = 0; i < whole; i++) data.push(src.subarray(i * shard, (i + 1) * shard));
    if (whole < this.k) {
      const tail = allocCodingBuffer((this.k - whole) * shard);
      const copied = src.copy(tail, 0, whole * shard);
      tail.fill(0, copied);
      for (let i = 0; i < this.k - whole; i++) data.push(tail.subarray(i * shard, (i + 1) * shard));
    }
    await isalRun(this.ctx, range(0, this.k), data, range(this.k, this.k + this.m), parity);
    checkAborted(signal);
    return [...data, ...parity];
  }

  async reconstruct(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, options: { dest?: Buffer; signal?: AbortSignal } = {}): Promise<Buffer> {
    checkAborted(options.signal);
    checkPayloadBytes(payloadBytes);
    const shard = this.fragmentBytes(payloadBytes);
    const present = this.#present(fragments, shard);
    const dest = options.dest;
    if (dest !== undefined && dest.length < payloadBytes) {
      throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `destination of ${dest.length} bytes is smaller than the ${payloadBytes}-byte payload`);
    }
    const out = (dest ?? allocCodingBuffer(payloadBytes)).subarray(0, payloadBytes);
    // Data fragments that hold payload bytes (the rest are padding) and are missing.
    const used = Math.min(this.k, Math.ceil(payloadBytes / shard));
    const missing: number[] = [];
    for (let i = 0; i < used; i++) if (fragments[i] === undefined) missing.push(i);
    if (missing.length > 0) {
      const sources = this.#sources(present);
      // Whole fragments decode in place; the one cut by the payload's end goes through a bounce
      // buffer, so nothing past `payloadBytes` in the caller's buffer is written.
      const inPlace = (i: number): boolean => (i + 1) * shard <= payloadBytes;
      const outs = missing.map((i) => (inPlace(i) ? out.subarray(i * shard, (i + 1) * shard) : allocCodingBuffer(shard)));
      await isalRun(this.ctx, sources, sources.map((i) => fragments[i]!), missing, outs);
      missing.forEach((i, j) => {
        if (!inPlace(i)) outs[j]!.copy(out, i * shard, 0, payloadBytes - i * shard);
      });
    }
    for (let i = 0; i < used; i++) {
      const f = fragments[i];
      if (f === undefined) continue;
      const n = Math.min(shard, payloadBytes - i * shard);
      out.set(n === shard ? f : f.subarray(0, n), i * shard);
    }
    checkAborted(options.signal);
    return out;
  }

  async rebuildFragments(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, indexes: readonly number[], signal?: AbortSignal): Promise<Buffer[]> {
    checkAborted(signal);
    checkPayloadBytes(payloadBytes);
    for (const i of indexes) {
      if (!Number.isInteger(i) || i < 0 || i >= this.fragmentCount) throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `fragment index ${i} is not in 0..${this.fragmentCount - 1}`);
    }
    const shard = this.fragmentBytes(payloadBytes);
    const present = this.#present(fragments, shard);
    const targets = [...new Set(indexes.filter((i) => fragments[i] === undefined))];
    const rebuilt = new Map<number, Buffer>();
    if (targets.length > 0) {
      const bytes = allocCodingBuffer(targets.length * shard);
      const outs = targets.map((_, j) => bytes.subarray(j * shard, (j + 1) * shard));
      const sources = this.#sources(present);
      await isalRun(this.ctx, sources, sources.map((i) => fragments[i]!), targets, outs);
      targets.forEach((i, j) => rebuilt.set(i, outs[j]!));
    }
    checkAborted(signal);
    const handedOut = new Set<number>();
    return indexes.map((i) => {
      const fresh = rebuilt.get(i);
      if (fresh === undefined) return Buffer.from(fragments[i]!);
      if (handedOut.has(i)) return Buffer.from(fresh); // a repeated index gets its own copy
      handedOut.add(i);
      return fresh;
    });
  }

  /** Checks slots and sizes; returns the indexes present, at least k of them. */
  #present(fragments: ReadonlyArray<Uint8Array | undefined>, shard: number): number[] {
    if (fragments.length !== this.fragmentCount) {
      throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `expected ${this.fragmentCount} fragment slots, got ${fragments.length}`);
    }
    const present: number[] = [];
    fragments.forEach((f, i) => {
      if (f === undefined) return;
      if (f.byteLength !== shard) {
        throw erasureErrors.create('TW_ERASURE_FRAGMENT_SIZE', `fragment ${i} has ${f.byteLength} bytes, expected ${shard}`, {
          details: { fragmentIndex: i, lengthBytes: f.byteLength, expectedBytes: shard },
        });
      }
      present.push(i);
    });
    if (present.length < this.k) {
      throw erasureErrors.create('TW_ERASURE_TOO_FEW_FRAGMENTS', `${present.length} of ${this.fragmentCount} fragments survive; ec:${this.k}+${this.m} needs ${this.k}`, {
        details: { present: present.length, needed: this.k },
      });
    }
    return present;
  }

  /** k sources, data fragments first: with all k data fragments no matrix is inverted. */
  #sources(present: readonly number[]): number[] {
    return present.slice(0, this.k); // `present` is ascending, so data fragments come first
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
