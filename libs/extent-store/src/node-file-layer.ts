import { readvSync, writevSync } from 'node:fs';
import { open as fsOpen, readdir, rename, stat, unlink, mkdir, statfs } from 'node:fs/promises';
import type { FileHandle as NodeFileHandle } from 'node:fs/promises';
import type { FileHandle, FileLayer, OpenMode, ReadOptions } from './file-layer.js';
import { byteLengthOf } from './file-layer.js';
import {
  SYNC_READ_BYTES_MAX_DEFAULT,
  SYNC_READ_PAUSE_MS,
  SYNC_READ_SLOW_BASE_MS,
  SYNC_READ_SLOW_BYTES_PER_MS,
  SYNC_READ_STALL_MS,
  SYNC_WRITE_BYTES_MAX_DEFAULT,
  SYNC_WRITE_PAUSE_MS,
  SYNC_WRITE_SLOW_MS,
} from './limits.js';

const ZERO_CHUNK_BYTES = 1024 * 1024;

/** Options of the real file layer. */
export interface NodeFileLayerOptions {
  /**
   * How `allocate` grows a file: `sparse` (ftruncate; fast, blocks allocated on write) or
   * `zeros` (writes zeros, so the blocks exist before the first record lands).
   */
  preallocate?: 'sparse' | 'zeros';
  /**
   * Writes of at most this many bytes run on the calling thread (pwritev into the page cache,
   * tens of microseconds) instead of the thread pool; larger ones, and every sync, go to
   * the pool. 0: every write goes to the pool. Default SYNC_WRITE_BYTES_MAX_DEFAULT.
   */
  syncWriteBytesMax?: number;
  /**
   * Latency-sensitive reads (ReadOptions) of at most this many bytes run on the calling thread,
   * expecting a page-cache hit; the rest go to the thread pool. 0: every read goes to the pool.
   * Default SYNC_READ_BYTES_MAX_DEFAULT.
   */
  syncReadBytesMax?: number;
  /** Milliseconds since some origin (default performance.now); tests pass a fake clock. */
  nowMs?: () => number;
  /**
   * Blocks this process has read from block devices so far, any unit, only growing (default
   * `process.resourceUsage().fsRead`, the kernel's per-process count); tests pass a fake disk.
   */
  blockReadsSoFar?: () => number;
}

/**
 * Where writes went: on the calling thread or through the thread pool. An inline write that takes
 * longer than SYNC_WRITE_SLOW_MS (the kernel throttling dirty pages, a journal wait) sends every
 * write of the layer to the pool for SYNC_WRITE_PAUSE_MS, so that a slow disk blocks pool
 * threads, not the event loop that serves reads.
 */
export interface WritePathStats {
  inlineWrites: number;
  pooledWrites: number;
  /** Times a slow inline write paused the inline path. */
  inlinePauses: number;
}

/**
 * Where latency-sensitive reads went. An inline read slower than a page-cache copy of its size
 * (SYNC_READ_SLOW_BASE_MS + bytes / SYNC_READ_SLOW_BYTES_PER_MS) during which the process read
 * from a block device went to the disk: every read of the layer then goes to the pool for
 * SYNC_READ_PAUSE_MS, so that a working set larger than the page cache costs the event loop one
 * disk read per pause, not one per get. Node offers no preadv2(RWF_NOWAIT) or mincore to ask the
 * page cache first.
 *
 * A slow read with no block input was a page-cache copy that waited for a CPU: with every core
 * busy, the scheduler preempts the event loop mid-copy. It does not pause the path, as sending
 * reads to the pool then costs two thread hand-offs each (futex wake-ups, measured at 7 % of a
 * node's CPU at 4 KiB gets) on a machine already short of CPU. Before this check, 2 of 3 reads of
 * a 1 MiB x16 get load went to the pool on a 2-vCPU VM, with nothing read from disk.
 */
export interface ReadPathStats {
  inlineReads: number;
  pooledReads: number;
  /** Times a slow inline read paused the inline path. */
  inlinePauses: number;
  /** Inline reads that were slow with no block input (waited for a CPU): no pause. */
  slowCachedReads: number;
}

/**
 * One direction's inline policy, shared by the handles of a layer: which calls run on the calling
 * thread, and the pause of that path after an inline call that was slow or failed (a failing disk
 * can retry an EIO for seconds, which the event loop would otherwise spend).
 */
class InlinePath {
  pausedUntilMs = -Infinity;
  inline = 0;
  pooled = 0;
  pauses = 0;
  /** Slow calls that `wentToDisk` cleared (no pause). */
  slowCached = 0;
  constructor(
    readonly bytesMax: number,
    /** How long an inline call of `bytes` may take before it counts as slow. */
    readonly slowMs: (bytes: number) => number,
    readonly pauseMs: number,
    /**
     * Asked after a slow call that succeeded in under `stallMs`: whether the process went to the
     * disk since the last time it was asked (then the slow call is taken for a disk wait). Absent:
     * every slow call pauses.
     */
    readonly wentToDisk?: () => boolean,
    readonly stallMs = Infinity,
  ) {}

  /** Whether a call of `bytes` starting at `startMs` runs inline; counts it either way. */
  admit(bytes: number, startMs: number): boolean {
    const inline = bytes <= this.bytesMax && startMs >= this.pausedUntilMs;
    if (inline) this.inline++;
    else this.pooled++;
    return inline;
  }

  /** After an inline call: pauses the path if the call failed or was slow. */
  finished(bytes: number, startMs: number, endMs: number, ok: boolean): void {
    const tookMs = endMs - startMs;
    if (ok && tookMs <= this.slowMs(bytes)) return;
    if (ok && tookMs < this.stallMs && this.wentToDisk !== undefined && !this.wentToDisk()) {
      this.slowCached++;
      return;
    }
    this.pausedUntilMs = endMs + this.pauseMs;
    this.pauses++;
  }
}

/** Shared by the handles of one layer. */
interface InlinePaths {
  readonly nowMs: () => number;
  readonly write: InlinePath;
  readonly read: InlinePath;
}

/** The real node:fs file layer; `writeStats` and `readStats` tell where its writes and reads went. */
export type NodeFileLayer = FileLayer & { readonly writeStats: Readonly<WritePathStats>; readonly readStats: Readonly<ReadPathStats> };

/** The real node:fs file layer. */
export function nodeFileLayer(options: NodeFileLayerOptions = {}): NodeFileLayer {
  const preallocate = options.preallocate ?? 'sparse';
  const paths: InlinePaths = {
    nowMs: options.nowMs ?? (() => performance.now()),
    write: new InlinePath(options.syncWriteBytesMax ?? SYNC_WRITE_BYTES_MAX_DEFAULT, () => SYNC_WRITE_SLOW_MS, SYNC_WRITE_PAUSE_MS),
    read: new InlinePath(
      options.syncReadBytesMax ?? SYNC_READ_BYTES_MAX_DEFAULT,
      (bytes) => SYNC_READ_SLOW_BASE_MS + bytes / SYNC_READ_SLOW_BYTES_PER_MS,
      SYNC_READ_PAUSE_MS,
      blockInputSince(options.blockReadsSoFar ?? (() => process.resourceUsage().fsRead)),
      SYNC_READ_STALL_MS,
    ),
  };
  const { write, read } = paths;
  return {
    get writeStats(): WritePathStats {
      return { inlineWrites: write.inline, pooledWrites: write.pooled, inlinePauses: write.pauses };
    },
    get readStats(): ReadPathStats {
      return { inlineReads: read.inline, pooledReads: read.pooled, inlinePauses: read.pauses, slowCachedReads: read.slowCached };
    },
    async open(path: string, mode: OpenMode): Promise<FileHandle> {
      const flags = mode === 'r' ? 'r' : mode === 'r+' ? 'r+' : 'wx+';
      const fh = await fsOpen(path, flags);
      return new NodeHandle(path, fh, preallocate, paths);
    },
    async stat(path: string) {
      try {
        const s = await stat(path);
        return { sizeBytes: s.size };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    unlink: (path) => unlink(path),
    rename: (from, to) => rename(from, to),
    readdir: (dir) => readdir(dir),
    async mkdir(dir) {
      await mkdir(dir, { recursive: true });
    },
    async syncDir(dir) {
      const fh = await fsOpen(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    },
    async freeBytes(dir) {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    },
  };
}

/**
 * Whether the counter grew since the last call (a few microseconds: one getrusage). Any thread's
 * block reads count, so a compaction reading from disk meanwhile makes a slow cached read pause the
 * path too: the cautious side.
 */
function blockInputSince(blockReadsSoFar: () => number): () => boolean {
  let seen = blockReadsSoFar();
  return () => {
    const now = blockReadsSoFar();
    const grew = now !== seen;
    seen = now;
    return grew;
  };
}

class NodeHandle implements FileHandle {
  constructor(
    readonly path: string,
    readonly fh: NodeFileHandle,
    readonly preallocate: 'sparse' | 'zeros',
    readonly paths: InlinePaths,
  ) {}

  async readv(buffers: readonly Uint8Array[], position: number, options?: ReadOptions): Promise<number> {
    // preadv may return short reads before EOF (signals, large requests): loop until full or EOF.
    const want = byteLengthOf(buffers);
    let done = 0;
    let bufs = [...buffers];
    // Only latency-sensitive reads (gets) are candidates, and only they are counted.
    const counted = options?.latencySensitive === true;
    const startMs = counted ? this.paths.nowMs() : 0;
    const inline = counted && this.paths.read.admit(want, startMs);
    if (inline && this.fh.fd < 0) throw Object.assign(new Error('EBADF: file closed'), { code: 'EBADF', syscall: 'read' });
    let ok = false;
    try {
      while (done < want) {
        const bytesRead = inline ? readvSync(this.fh.fd, bufs as Uint8Array[], position + done) : (await this.fh.readv(bufs, position + done)).bytesRead;
        if (bytesRead === 0) break;
        done += bytesRead;
        bufs = advance(bufs, bytesRead);
      }
      ok = true;
    } finally {
      if (inline) this.paths.read.finished(want, startMs, this.paths.nowMs(), ok);
    }
    return done;
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    const want = byteLengthOf(buffers);
    let done = 0;
    let bufs = [...buffers];
    // A thread-pool write costs two thread hand-offs (measured on this project's VMs: each a
    // context switch that costs more CPU than copying a few hundred KiB into the page cache).
    const startMs = this.paths.nowMs();
    const inline = this.paths.write.admit(want, startMs);
    // A closed FileHandle's fd is -1: fail as the thread-pool path does, not with a RangeError.
    if (inline && this.fh.fd < 0) throw Object.assign(new Error('EBADF: file closed'), { code: 'EBADF', syscall: 'write' });
    let ok = false;
    try {
      while (done < want) {
        const bytesWritten = inline ? writevSync(this.fh.fd, bufs as Uint8Array[], position + done) : (await this.fh.writev(bufs, position + done)).bytesWritten;
        if (bytesWritten === 0) throw Object.assign(new Error('pwritev wrote nothing'), { code: 'EIO' });
        done += bytesWritten;
        bufs = advance(bufs, bytesWritten);
      }
      ok = true;
    } finally {
      if (inline) this.paths.write.finished(want, startMs, this.paths.nowMs(), ok);
    }
  }

  datasync(): Promise<void> {
    return this.fh.datasync();
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.fh.truncate(sizeBytes);
  }

  async allocate(sizeBytes: number): Promise<void> {
    const { size } = await this.fh.stat();
    if (size >= sizeBytes) return;
    if (this.preallocate === 'sparse') {
      await this.fh.truncate(sizeBytes);
      return;
    }
    const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, sizeBytes - size));
    for (let pos = size; pos < sizeBytes; pos += zeros.byteLength) {
      const n = Math.min(zeros.byteLength, sizeBytes - pos);
      // Through the thread pool, never inline: filling an extent is up to gigabytes of writes.
      const { bytesWritten } = await this.fh.writev([zeros.subarray(0, n)], pos);
      if (bytesWritten !== n) throw Object.assign(new Error(`preallocation wrote ${bytesWritten} of ${n} bytes`), { code: 'EIO' });
    }
  }

  async stat(): Promise<{ sizeBytes: number }> {
    const s = await this.fh.stat();
    return { sizeBytes: s.size };
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Drops the first `n` bytes from a list of buffers (views, no copy). */
export function advance(buffers: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    out.push(skip === 0 ? b : b.subarray(skip));
    skip = 0;
  }
  return out;
}
