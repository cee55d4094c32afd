import { llamaOffloadErrors } from './errors.js';

/** llama.cpp's LLAMA_STATE_SEQ_MAGIC ('ggsq') and LLAMA_STATE_SEQ_VERSION (3) in node-llama-cpp 3.21.1. */
export const STATE_SEQ_MAGIC = 0x67677371;
export const STATE_SEQ_VERSION = 3;
/** Per cell: pos (i32), n_seq_id (u32) = 1, seq_id (i32); no cell ext for LLM_ARCH_LLAMA. */
export const META_BYTES_PER_CELL = 12;

/** Per layer: how one layer's K and V are laid out in the state file. */
export interface LayerLayout {
  readonly kType: number;
  readonly kRowBytes: number;
  readonly vType: number;
  /** v_trans = 0: bytes of one cell's V row. v_trans = 1: bytes of one element. */
  readonly vRowOrElBytes: number;
  /** v_trans = 1 only: rows of the transposed V (n_embd_v_gqa); 0 otherwise. */
  readonly vRows: number;
}

export interface StateLayout {
  readonly vTrans: boolean;
  readonly layers: readonly LayerLayout[];
}

/** Bytes one token (cell) adds to a state: its token id, its cell meta, its K and V. */
export function bytesPerToken(l: StateLayout): number {
  let n = 4 + META_BYTES_PER_CELL;
  for (const x of l.layers) n += x.kRowBytes + (l.vTrans ? x.vRows * x.vRowOrElBytes : x.vRowOrElBytes);
  return n;
}

export function sameLayout(a: StateLayout, b: StateLayout): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A parsed sequence state file: where each part of each cell lives. */
export interface ParsedState {
  readonly layout: StateLayout;
  readonly tokens: Int32Array;
  readonly cells: number;
  readonly metaOffset: number;
  /** Per layer, offset of the first K row (cells rows of kRowBytes). */
  readonly kOffsets: readonly number[];
  /** Per layer, offset of the V data (rows, or vRows runs of `cells` elements). */
  readonly vOffsets: readonly number[];
  readonly bytes: Buffer;
}

/**
 * Parses a file written by `llama_state_seq_save_file` (LlamaContextSequence.saveStateToFile) of
 * one sequence whose cells are positions 0..n-1 in order, and checks it consumes the file
 * exactly. That is the shape a sequence has after prefilling a prompt from an empty context;
 * anything else (holes, shifted positions, several streams) is refused rather than guessed at.
 */
export function parseStateFile(bytes: Buffer): ParsedState {
  const bad = (why: string): never => {
    throw llamaOffloadErrors.create('TW_LLAMA_STATE_FORMAT', `sequence state file: ${why}`);
  };
  let o = 0;
  const u32 = (): number => {
    if (o + 4 > bytes.length) bad('truncated');
    const v = bytes.readUInt32LE(o);
    o += 4;
    return v;
  };
  const i32 = (): number => {
    if (o + 4 > bytes.length) bad('truncated');
    const v = bytes.readInt32LE(o);
    o += 4;
    return v;
  };
  const u64 = (): number => {
    if (o + 8 > bytes.length) bad('truncated');
    const v = bytes.readBigUInt64LE(o);
    o += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad('a size is too large');
    return Number(v);
  };
  if (u32() !== STATE_SEQ_MAGIC) bad('not a llama.cpp sequence state (magic)');
  if (u32() !== STATE_SEQ_VERSION) bad(`state version is not ${STATE_SEQ_VERSION}`);
  const nTokens = u32();
  if (o + nTokens * 4 > bytes.length) bad('truncated token list');
  const tokens = new Int32Array(nTokens);
  for (let i = 0; i < nTokens; i++) tokens[i] = bytes.readInt32LE(o + i * 4);
  o += nTokens * 4;
  if (u32() !== 1) bad('expected exactly one KV stream');
  const cells = u32();
  if (cells !== nTokens) bad(`cells (${cells}) != tokens (${nTokens})`);
  const metaOffset = o;
  for (let i = 0; i < cells; i++) {
    if (i32() !== i) bad(`cell ${i} is not at position ${i}`);
    if (u32() !== 1) bad(`cell ${i} does not belong to exactly one sequence`);
    i32();
  }
  const vTransRaw = u32();
  if (vTransRaw > 1) bad('v_trans is not 0 or 1');
  const vTrans = vTransRaw === 1;
  const nLayer = u32();
  if (nLayer === 0 || nLayer > 4096) bad('bad layer count');
  const kTypes: number[] = [];
  const kRows: number[] = [];
  const kOffsets: number[] = [];
  for (let l = 0; l < nLayer; l++) {
    kTypes.push(i32());
    kRows.push(u64());
    kOffsets.push(o);
    o += cells * kRows[l]!;
  }
  const layers: LayerLayout[] = [];
  const vOffsets: number[] = [];
  for (let l = 0; l < nLayer; l++) {
    const vType = i32();
    if (vTrans) {
      const el = u32();
      const rows = u32();
      vOffsets.push(o);
      o += rows * cells * el;
      layers.push({ kType: kTypes[l]!, kRowBytes: kRows[l]!, vType, vRowOrElBytes: el, vRows: rows });
    } else {
      const row = u64();
      vOffsets.push(o);
      o += cells * row;
      layers.push({ kType: kTypes[l]!, kRowBytes: kRows[l]!, vType, vRowOrElBytes: row, vRows: 0 });
    }
  }
  if (o !== bytes.length) bad(`layout accounts for ${o} bytes, the file has ${bytes.length}`);
  return { layout: { vTrans, layers }, tokens, cells, metaOffset, kOffsets, vOffsets, bytes };
}

/**
 * The cells [from, to) of a parsed state as the parts of one block payload: tokens, cell meta,
 * then each layer's K rows, then each layer's V (rows, or for a transposed V each of its rows'
 * elements for these cells). Parts are views of the state's bytes (no copy) except the gathered
 * transposed V.
 */
export function sliceCells(s: ParsedState, from: number, to: number): Buffer[] {
  const n = to - from;
  const b = s.bytes;
  const parts: Buffer[] = [];
  const tokenStart = 12;
  parts.push(b.subarray(tokenStart + from * 4, tokenStart + to * 4));
  parts.push(b.subarray(s.metaOffset + from * META_BYTES_PER_CELL, s.metaOffset + to * META_BYTES_PER_CELL));
  s.layout.layers.forEach((l, i) => {
    const k0 = s.kOffsets[i]!;
    parts.push(b.subarray(k0 + from * l.kRowBytes, k0 + to * l.kRowBytes));
  });
  s.layout.layers.forEach((l, i) => {
    const v0 = s.vOffsets[i]!;
    if (!s.layout.vTrans) {
      parts.push(b.subarray(v0 + from * l.vRowOrElBytes, v0 + to * l.vRowOrElBytes));
      return;
    }
    const el = l.vRowOrElBytes;
    const gathered = Buffer.allocUnsafe(l.vRows * n * el);
    for (let j = 0; j < l.vRows; j++) {
      const src = v0 + (j * s.cells + from) * el;
      b.copy(gathered, j * n * el, src, src + n * el);
    }
    parts.push(gathered);
  });
  return parts;
}

/** Bytes of a block payload of `n` cells in this layout. */
export function payloadBytes(l: StateLayout, n: number): number {
  return bytesPerToken(l) * n;
}

/**
 * Rebuilds a sequence state file from consecutive block payloads (each of `cellsOf[i]` cells, in
 * order, positions 0..total-1): the inverse of parseStateFile + sliceCells. Returns the file as
 * a list of buffers (views of the payloads where the layout allows) to write with writev.
 */
export function assembleStateFile(layout: StateLayout, payloads: readonly Buffer[], cellsOf: readonly number[]): Buffer[] {
  const total = cellsOf.reduce((a, b) => a + b, 0);
  const out: Buffer[] = [];
  const head = Buffer.alloc(12);
  head.writeUInt32LE(STATE_SEQ_MAGIC, 0);
  head.writeUInt32LE(STATE_SEQ_VERSION, 4);
  head.writeUInt32LE(total, 8);
  out.push(head);
  // Section offsets inside one payload of n cells.
  const sections = (n: number) => {
    let o = 0;
    const tokens = o;
    o += n * 4;
    const meta = o;
    o += n * META_BYTES_PER_CELL;
    const k: number[] = [];
    for (const l of layout.layers) {
      k.push(o);
      o += n * l.kRowBytes;
    }
    const v: number[] = [];
    for (const l of layout.layers) {
      v.push(o);
      o += layout.vTrans ? l.vRows * n * l.vRowOrElBytes : n * l.vRowOrElBytes;
    }
    return { tokens, meta, k, v, end: o };
  };
  const secs = payloads.map((p, i) => {
    const s = sections(cellsOf[i]!);
    if (s.end !== p.length) throw llamaOffloadErrors.create('TW_LLAMA_STATE_FORMAT', `block ${i}: payload of ${p.length} bytes, layout needs ${s.end}`);
    return s;
  });
  payloads.forEach((p, i) => out.push(p.subarray(secs[i]!.tokens, secs[i]!.meta)));
  const streams = Buffer.alloc(8);
  streams.writeUInt32LE(1, 0);
  streams.writeUInt32LE(total, 4);
  out.push(streams);
  payloads.forEach((p, i) => out.push(p.subarray(secs[i]!.meta, secs[i]!.k[0] ?? secs[i]!.end)));
  const dataHead = Buffer.alloc(8);
  dataHead.writeUInt32LE(layout.vTrans ? 1 : 0, 0);
  dataHead.writeUInt32LE(layout.layers.length, 4);
  out.push(dataHead);
  layout.layers.forEach((l, li) => {
    const h = Buffer.alloc(12);
    h.writeInt32LE(l.kType, 0);
    h.writeBigUInt64LE(BigInt(l.kRowBytes), 4);
    out.push(h);
    payloads.forEach((p, i) => out.push(p.subarray(secs[i]!.k[li]!, secs[i]!.k[li]! + cellsOf[i]! * l.kRowBytes)));
  });
  layout.layers.forEach((l, li) => {
    if (!layout.vTrans) {
      const h = Buffer.alloc(12);
      h.writeInt32LE(l.vType, 0);
      h.writeBigUInt64LE(BigInt(l.vRowOrElBytes), 4);
      out.push(h);
      payloads.forEach((p, i) => out.push(p.subarray(secs[i]!.v[li]!, secs[i]!.v[li]! + cellsOf[i]! * l.vRowOrElBytes)));
      return;
    }
    const h = Buffer.alloc(12);
    h.writeInt32LE(l.vType, 0);
    h.writeUInt32LE(l.vRowOrElBytes, 4);
    h.writeUInt32LE(l.vRows, 8);
    out.push(h);
    // Transposed V: row j of the whole state = row j of each block, one after the other.
    const el = l.vRowOrElBytes;
    const rows = Buffer.allocUnsafe(l.vRows * total * el);
    let w = 0;
    for (let j = 0; j < l.vRows; j++) {
      payloads.forEach((p, i) => {
        const n = cellsOf[i]!;
        const src = secs[i]!.v[li]! + j * n * el;
        w += p.copy(rows, w, src, src + n * el);
      });
    }
    out.push(rows);
  });
  return out;
}

/** One run of bytes of a block payload and where it goes in the state file. */
export interface Placement {
  readonly payloadOffset: number;
  readonly bytes: number;
  readonly fileOffset: number;
}

/**
 * Where everything of a state file of `blocks` consecutive blocks of `blockCells` cells lives, so
 * a restore can write each block into its place as soon as it arrives instead of gathering every
 * block first. `headers`: the file's own fixed fields (magic, counts, per-layer types and row
 * sizes), written once. `placeBlock(i)`: block i's payload sections (tokens, cell meta, each
 * layer's K rows, each layer's V rows) and their file offsets. Only for an untransposed V (flash
 * attention on): a transposed V scatters every block into `vRows` pieces per layer, which
 * `assembleStateFile` handles by copying.
 */
export interface StateFilePlan {
  readonly fileBytes: number;
  /** Where the tokens (i32 each, all blocks in order) start in the file. */
  readonly tokensOffset: number;
  readonly headers: readonly { readonly fileOffset: number; readonly bytes: Buffer }[];
  placeBlock(i: number): Placement[];
}

export function planStateFile(layout: StateLayout, blocks: number, blockCells: number): StateFilePlan {
  if (layout.vTrans) throw llamaOffloadErrors.create('TW_LLAMA_STATE_FORMAT', 'a state with a transposed V cannot be written block by block');
  const total = blocks * blockCells;
  const headers: { fileOffset: number; bytes: Buffer }[] = [];
  let o = 0;
  const head = Buffer.alloc(12);
  head.writeUInt32LE(STATE_SEQ_MAGIC, 0);
  head.writeUInt32LE(STATE_SEQ_VERSION, 4);
  head.writeUInt32LE(total, 8);
  headers.push({ fileOffset: o, bytes: head });
  o += 12;
  const tokensAt = o;
  o += total * 4;
  const streams = Buffer.alloc(8);
  streams.writeUInt32LE(1, 0);
  streams.writeUInt32LE(total, 4);
  headers.push({ fileOffset: o, bytes: streams });
  o += 8;
  const metaAt = o;
  o += total * META_BYTES_PER_CELL;
  const dataHead = Buffer.alloc(8);
  dataHead.writeUInt32LE(0, 0);
  dataHead.writeUInt32LE(layout.layers.length, 4);
  headers.push({ fileOffset: o, bytes: dataHead });
  o += 8;
  const kAt: number[] = [];
  for (const l of layout.layers) {
    const h = Buffer.alloc(12);
    h.writeInt32LE(l.kType, 0);
    h.writeBigUInt64LE(BigInt(l.kRowBytes), 4);
    headers.push({ fileOffset: o, bytes: h });
    kAt.push(o + 12);
    o += 12 + total * l.kRowBytes;
  }
  const vAt: number[] = [];
  for (const l of layout.layers) {
    const h = Buffer.alloc(12);
    h.writeInt32LE(l.vType, 0);
    h.writeBigUInt64LE(BigInt(l.vRowOrElBytes), 4);
    headers.push({ fileOffset: o, bytes: h });
    vAt.push(o + 12);
    o += 12 + total * l.vRowOrElBytes;
  }
  const fileBytes = o;
  const n = blockCells;
  return {
    fileBytes,
    tokensOffset: tokensAt,
    headers,
    placeBlock(i: number): Placement[] {
      if (!Number.isInteger(i) || i < 0 || i >= blocks) throw new RangeError(`block ${i} is not in 0..${blocks - 1}`);
      const first = i * n;
      const out: Placement[] = [];
      let p = 0;
      out.push({ payloadOffset: p, bytes: n * 4, fileOffset: tokensAt + first * 4 });
      p += n * 4;
      out.push({ payloadOffset: p, bytes: n * META_BYTES_PER_CELL, fileOffset: metaAt + first * META_BYTES_PER_CELL });
      p += n * META_BYTES_PER_CELL;
      layout.layers.forEach((l, li) => {
        out.push({ payloadOffset: p, bytes: n * l.kRowBytes, fileOffset: kAt[li]! + first * l.kRowBytes });
        p += n * l.kRowBytes;
      });
      layout.layers.forEach((l, li) => {
        out.push({ payloadOffset: p, bytes: n * l.vRowOrElBytes, fileOffset: vAt[li]! + first * l.vRowOrElBytes });
        p += n * l.vRowOrElBytes;
      });
      return out;
    },
  };
}
