import { type Redundancy, fragmentBytes, fragmentCount, formatRedundancy } from '@tw/block-format';
import { type RsContext, rs, rsEncode } from './binding.js';
import { type ErasureCodec, checkCommon } from './codec.js';
import { erasureErrors } from './errors.js';

/** Returns the codec for a policy. Codecs are safe to share between concurrent callers. */
export function createCodec(redundancy: Redundancy): ErasureCodec {
  try {
    checkCommon(redundancy);
  } catch (err) {
    throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `unsupported redundancy ${formatRedundancy(redundancy)}`, { cause: err });
  }
  if (redundancy.kind !== 'ec') return new CopyCodec(redundancy);
  const key = `${redundancy.k}+${redundancy.m}`;
  let codec = rsCodecs.get(key);
  if (codec === undefined) {
    codec = new ReedSolomonCodec(redundancy.k, redundancy.m);
    rsCodecs.set(key, codec);
  }
  return codec;
}

/** One codec per (k, m): they are safe to share, and sharing lets their scratch buffers be reused. */
const rsCodecs = new Map<string, ReedSolomonCodec>();

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

function checkFragments(
  fragments: ReadonlyArray<Uint8Array | undefined>,
  count: number,
  expectedBytes: number,
): number[] {
  if (fragments.length !== count) {
    throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `expected ${count} fragment slots, got ${fragments.length}`);
  }
  const present: number[] = [];
  fragments.forEach((f, i) => {
    if (f === undefined) return;
    if (f.byteLength !== expectedBytes) {
      throw erasureErrors.create('TW_ERASURE_FRAGMENT_SIZE', `fragment ${i} has ${f.byteLength} bytes, expected ${expectedBytes}`, {
        details: { fragmentIndex: i, lengthBytes: f.byteLength, expectedBytes },
      });
    }
    present.push(i);
  });
  return present;
}

/** `replicate:n` and `none`: every fragment is the whole payload. */
class CopyCodec implements ErasureCodec {
  readonly fragmentCount: number;
  readonly fragmentsNeeded = 1;
  constructor(readonly redundancy: Redundancy) {
    this.fragmentCount = fragmentCount(redundancy);
  }
  fragmentBytes(payloadBytes: number): number {
    return fragmentBytes(this.redundancy, payloadBytes);
  }
  async encode(payload: Uint8Array, signal?: AbortSignal): Promise<Buffer[]> {
    checkAborted(signal);
    const view = asBuffer(payload);
    return Array.from({ length: this.fragmentCount }, () => view);
  }
  async encodeInto(payload: Uint8Array, parity: readonly Uint8Array[], signal?: AbortSignal): Promise<Buffer[]> {
    if (parity.length !== 0) throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `${formatRedundancy(this.redundancy)} has no parity fragments; got ${parity.length} buffers`);
    return this.encode(payload, signal);
  }
  async reconstruct(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, options: { dest?: Buffer; signal?: AbortSignal } = {}): Promise<Buffer> {
    checkAborted(options.signal);
    checkPayloadBytes(payloadBytes);
    const present = checkFragments(fragments, this.fragmentCount, payloadBytes);
    const first = present[0];
    if (first === undefined) throw erasureErrors.create('TW_ERASURE_TOO_FEW_FRAGMENTS', `no copy of the block survives (${formatRedundancy(this.redundancy)})`);
    const src = asBuffer(fragments[first]!);
    if (options.dest === undefined) return src;
    src.copy(options.dest, 0, 0, payloadBytes);
    return options.dest.subarray(0, payloadBytes);
  }
  async rebuildFragments(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, indexes: readonly number[], signal?: AbortSignal): Promise<Buffer[]> {
    checkIndexes(indexes, this.fragmentCount);
    const payload = await this.reconstruct(fragments, payloadBytes, signal === undefined ? {} : { signal });
    return indexes.map(() => payload);
  }
}

function checkIndexes(indexes: readonly number[], count: number): void {
  for (const i of indexes) {
    if (!Number.isInteger(i) || i < 0 || i >= count) throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `fragment index ${i} is not in 0..${count - 1}`);
  }
}

/** Scratch parity buffers kept per codec for decodes. */
const SCRATCH_BUFFERS_MAX = 4;

const contexts = new Map<string, RsContext>();
function contextFor(k: number, m: number): RsContext {
  const key = `${k}+${m}`;
  let ctx = contexts.get(key);
  if (ctx === undefined) {
    ctx = rs.create(k, m);
    contexts.set(key, ctx);
  }
  return ctx;
}

/**
 * `ec:k+m` over @ronomon/reed-solomon (Cauchy Reed-Solomon in GF(2^8), native, on the thread
 * pool). The codec wants the k data shards in one contiguous buffer and the m parity shards in
 * another, so a payload that is already k x fragment bytes long is encoded in place (zero copy)
 * and any other is copied once into a padded buffer.
 */
class ReedSolomonCodec implements ErasureCodec {
  readonly redundancy: Redundancy;
  readonly fragmentCount: number;
  readonly fragmentsNeeded: number;
  readonly #ctx: RsContext;
  /**
   * Scratch parity buffers for decodes, reused: a fresh multi-MiB allocation per decode costs
   * more than the decode (page faults on first touch). Bounded; only exact sizes are reused.
   */
  readonly #scratch: Buffer[] = [];

  #takeScratch(bytes: number): Buffer {
    const i = this.#scratch.findIndex((b) => b.length === bytes);
    if (i !== -1) return this.#scratch.splice(i, 1)[0]!;
    return Buffer.allocUnsafe(bytes);
  }

  #giveScratch(b: Buffer): void {
    if (this.#scratch.length >= SCRATCH_BUFFERS_MAX) this.#scratch.shift();
    this.#scratch.push(b);
  }

  constructor(
    readonly k: number,
    readonly m: number,
  ) {
    this.redundancy = { kind: 'ec', k, m };
    this.fragmentCount = k + m;
    this.fragmentsNeeded = k;
    this.#ctx = contextFor(k, m);
  }

  fragmentBytes(payloadBytes: number): number {
    return fragmentBytes(this.redundancy, payloadBytes);
  }

  async encode(payload: Uint8Array, signal?: AbortSignal): Promise<Buffer[]> {
    const shard = this.fragmentBytes(payload.byteLength);
    return this.#encode(payload, Buffer.allocUnsafe(shard * this.m), undefined, signal);
  }

  async encodeInto(payload: Uint8Array, parity: readonly Uint8Array[], signal?: AbortSignal): Promise<Buffer[]> {
    const shard = this.fragmentBytes(payload.byteLength);
    if (parity.length !== this.m) throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `expected ${this.m} parity buffers, got ${parity.length}`);
    parity.forEach((p, i) => {
      if (p.byteLength !== shard) {
        throw erasureErrors.create('TW_ERASURE_FRAGMENT_SIZE', `parity buffer ${i} has ${p.byteLength} bytes, expected ${shard}`, {
          details: { fragmentIndex: this.k + i, lengthBytes: p.byteLength, expectedBytes: shard },
        });
      }
    });
    // The codec wants the parity shards contiguous: use the caller's memory directly when its
    // buffers are consecutive views of one allocation (the usual pooled layout), else stage.
    const first = asBuffer(parity[0]!);
    const contiguous = parity.every((p, i) => p.buffer === first.buffer && p.byteOffset === first.byteOffset + i * shard);
    const staging = contiguous ? Buffer.from(first.buffer, first.byteOffset, shard * this.m) : Buffer.allocUnsafe(shard * this.m);
    return this.#encode(payload, staging, contiguous ? undefined : parity, signal);
  }

  async #encode(payload: Uint8Array, parity: Buffer, copyParityTo: readonly Uint8Array[] | undefined, signal: AbortSignal | undefined): Promise<Buffer[]> {
    checkAborted(signal);
    const shard = this.fragmentBytes(payload.byteLength);
    let data = asBuffer(payload);
    if (data.length !== shard * this.k) {
      const padded = Buffer.allocUnsafe(shard * this.k);
      data.copy(padded);
      padded.fill(0, data.length);
      data = padded;
    }
    await rsEncode(this.#ctx, (1 << this.k) - 1, ((1 << this.m) - 1) << this.k, data, parity);
    checkAborted(signal);
    const out: Buffer[] = [];
    for (let i = 0; i < this.k; i++) out.push(data.subarray(i * shard, (i + 1) * shard));
    for (let i = 0; i < this.m; i++) {
      const p = parity.subarray(i * shard, (i + 1) * shard);
      if (copyParityTo === undefined) out.push(p);
      else {
        const dst = asBuffer(copyParityTo[i]!);
        p.copy(dst);
        out.push(dst);
      }
    }
    return out;
  }

  /** Fills `data` (k shards) and `parity` (m shards) with the present fragments and decodes `targets`. */
  async #decode(fragments: ReadonlyArray<Uint8Array | undefined>, present: number[], targets: number, data: Buffer, parity: Buffer, shard: number): Promise<void> {
    let sources = 0;
    // Exactly k sources: the codec inverts the k x k submatrix of the rows it is given.
    for (const i of present.slice(0, this.k)) {
      sources |= 1 << i;
      const f = fragments[i]!;
      if (i < this.k) data.set(f, i * shard);
      else parity.set(f, (i - this.k) * shard);
    }
    if (targets !== 0) await rsEncode(this.#ctx, sources, targets, data, parity);
  }

  async reconstruct(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, options: { dest?: Buffer; signal?: AbortSignal } = {}): Promise<Buffer> {
    checkAborted(options.signal);
    checkPayloadBytes(payloadBytes);
    const shard = this.fragmentBytes(payloadBytes);
    const present = checkFragments(fragments, this.fragmentCount, shard);
    this.#requireEnough(present);
    const dest = options.dest;
    if (dest !== undefined && dest.length < payloadBytes) {
      throw erasureErrors.create('TW_ERASURE_BAD_ARGUMENT', `destination of ${dest.length} bytes is smaller than the ${payloadBytes}-byte payload`);
    }
    let missingData = 0;
    for (let i = 0; i < this.k; i++) if (fragments[i] === undefined) missingData |= 1 << i;
    if (missingData === 0) {
      // Fast path: every data fragment is here; concatenate (one copy, no decode).
      const out = dest ?? Buffer.allocUnsafe(payloadBytes);
      let at = 0;
      for (let i = 0; i < this.k && at < payloadBytes; i++) {
        const f = fragments[i]!;
        const n = Math.min(f.byteLength, payloadBytes - at);
        out.set(n === f.byteLength ? f : f.subarray(0, n), at);
        at += n;
      }
      return out.subarray(0, payloadBytes);
    }
    // Decode straight into the caller's buffer when it has room for the padded data shards.
    const inPlace = dest !== undefined && dest.length >= shard * this.k;
    const data = inPlace ? dest.subarray(0, shard * this.k) : Buffer.allocUnsafe(shard * this.k);
    const parity = this.#takeScratch(shard * this.m);
    // Prefer data fragments as sources: they are copied into place anyway.
    const ordered = [...present.filter((i) => i < this.k), ...present.filter((i) => i >= this.k)];
    try {
      await this.#decode(fragments, ordered, missingData, data, parity, shard);
    } finally {
      this.#giveScratch(parity);
    }
    checkAborted(options.signal);
    if (dest !== undefined && !inPlace) {
      data.copy(dest, 0, 0, payloadBytes);
      return dest.subarray(0, payloadBytes);
    }
    return data.subarray(0, payloadBytes);
  }

  async rebuildFragments(fragments: ReadonlyArray<Uint8Array | undefined>, payloadBytes: number, indexes: readonly number[], signal?: AbortSignal): Promise<Buffer[]> {
    checkAborted(signal);
    checkPayloadBytes(payloadBytes);
    checkIndexes(indexes, this.fragmentCount);
    const shard = this.fragmentBytes(payloadBytes);
    const present = checkFragments(fragments, this.fragmentCount, shard);
    this.#requireEnough(present);
    const data = Buffer.allocUnsafe(shard * this.k);
    const parity = Buffer.allocUnsafe(shard * this.m);
    const sources = present.slice(0, this.k);
    let targets = 0;
    for (const i of indexes) if (!sources.includes(i)) targets |= 1 << i;
    await this.#decode(fragments, present, targets, data, parity, shard);
    checkAborted(signal);
    return indexes.map((i) => {
      const src = i < this.k ? data.subarray(i * shard, (i + 1) * shard) : parity.subarray((i - this.k) * shard, (i - this.k + 1) * shard);
      return Buffer.from(src);
    });
  }

  #requireEnough(present: number[]): void {
    if (present.length < this.k) {
      throw erasureErrors.create(
        'TW_ERASURE_TOO_FEW_FRAGMENTS',
        `${present.length} of ${this.fragmentCount} fragments survive; ec:${this.k}+${this.m} needs ${this.k}`,
        { details: { present: present.length, needed: this.k } },
      );
    }
  }
}
