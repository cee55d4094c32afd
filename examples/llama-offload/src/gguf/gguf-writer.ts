import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';

/** GGUF metadata value types (ggml's gguf.h). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** ggml tensor types used here. */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlTypeCode = (typeof GgmlType)[keyof typeof GgmlType];

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: readonly number[] | Float32Array }
  | { type: 'i32[]'; value: readonly number[] | Int32Array };

export interface GgufTensorSpec {
  readonly name: string;
  /** ggml order (ne0 first): the reverse of a numpy shape. */
  readonly dims: readonly number[];
  readonly type: GgmlTypeCode;
  /** Fills `out` (a view of this tensor's bytes at element `firstElement`) deterministically. */
  fill(out: Uint8Array, firstElement: number): void;
}

export const GGUF_ALIGNMENT = 32;
const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const GGUF_VERSION = 3;

/** Grows as metadata is appended; the header is small (the vocab is the largest part). */
class ByteSink {
  #buf = Buffer.alloc(1 << 16);
  #len = 0;
  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }
  u32(v: number): void {
    this.#reserve(4);
    this.#buf.writeUInt32LE(v >>> 0, this.#len);
    this.#len += 4;
  }
  i32(v: number): void {
    this.#reserve(4);
    this.#buf.writeInt32LE(v, this.#len);
    this.#len += 4;
  }
  u64(v: number): void {
    this.#reserve(8);
    this.#buf.writeBigUInt64LE(BigInt(v), this.#len);
    this.#len += 8;
  }
  f32(v: number): void {
    this.#reserve(4);
    this.#buf.writeFloatLE(v, this.#len);
    this.#len += 4;
  }
  u8(v: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = v;
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.#reserve(b.length);
    b.copy(this.#buf, this.#len);
    this.#len += b.length;
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.#len % alignment)) % alignment;
    this.#reserve(pad);
    this.#buf.fill(0, this.#len, this.#len + pad);
    this.#len += pad;
  }
  get length(): number {
    return this.#len;
  }
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

function writeValue(s: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      s.u32(GgufValueType.UINT32);
      s.u32(v.value);
      return;
    case 'i32':
      s.u32(GgufValueType.INT32);
      s.i32(v.value);
      return;
    case 'f32':
      s.u32(GgufValueType.FLOAT32);
      s.f32(v.value);
      return;
    case 'bool':
      s.u32(GgufValueType.BOOL);
      s.u8(v.value ? 1 : 0);
      return;
    case 'string':
      s.u32(GgufValueType.STRING);
      s.str(v.value);
      return;
    case 'string[]':
      s.u32(GgufValueType.ARRAY);
      s.u32(GgufValueType.STRING);
      s.u64(v.value.length);
      for (const x of v.value) s.str(x);
      return;
    case 'f32[]':
      s.u32(GgufValueType.ARRAY);
      s.u32(GgufValueType.FLOAT32);
      s.u64(v.value.length);
      for (const x of v.value) s.f32(x);
      return;
    case 'i32[]':
      s.u32(GgufValueType.ARRAY);
      s.u32(GgufValueType.INT32);
      s.u64(v.value.length);
      for (const x of v.value) s.i32(x);
      return;
  }
}

export function elementBytes(type: GgmlTypeCode): number {
  return type === GgmlType.F32 ? 4 : 2;
}

export function tensorBytes(t: GgufTensorSpec): number {
  return t.dims.reduce((a, b) => a * b, 1) * elementBytes(t.type);
}

const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Writes a GGUF v3 file: header, metadata, tensor infos, then each tensor's data streamed in
 * 4 MiB chunks (one chunk buffer in memory, whatever the model size). Writes to `path.tmp` and
 * renames, so a crash never leaves a half model under the final name.
 */
export function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorSpec[]): { sizeBytes: number } {
  const h = new ByteSink();
  h.u32(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(metadata.size);
  for (const [k, v] of metadata) {
    h.str(k);
    writeValue(h, v);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    offsets.push(offset);
    offset += tensorBytes(t);
    offset += (GGUF_ALIGNMENT - (offset % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
  }
  h.padTo(GGUF_ALIGNMENT);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  let written = 0;
  try {
    const put = (b: Uint8Array): void => {
      let o = 0;
      while (o < b.length) o += writeSync(fd, b, o, b.length - o);
      written += b.length;
    };
    put(h.bytes());
    const dataStart = written;
    const chunk = new Uint8Array(CHUNK_BYTES);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const pad = dataStart + offsets[i]! - written;
      if (pad > 0) put(new Uint8Array(pad));
      const total = tensorBytes(t);
      const eb = elementBytes(t.type);
      for (let done = 0; done < total; ) {
        const n = Math.min(CHUNK_BYTES, total - done);
        const view = chunk.subarray(0, n);
        t.fill(view, done / eb);
        put(view);
        done += n;
      }
    }
    const tail = (GGUF_ALIGNMENT - (written % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
    if (tail > 0) put(new Uint8Array(tail));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return { sizeBytes: written };
}
