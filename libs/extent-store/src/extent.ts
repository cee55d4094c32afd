import type { FileHandle } from './file-layer.js';

export const EXTENT_FILE_RE = /^extent-(\d{10})\.twx$/;

export function extentFileName(no: number): string {
  return `extent-${String(no).padStart(10, '0')}.twx`;
}

/** One open extent file and what the store knows about it (in memory; rebuilt on open). */
export class Extent {
  /** Append position: end of the last record written or reserved (bytes). */
  tailBytes = 0;
  /** End of the records the index has absorbed (what the `x` key says). */
  indexedTailBytes = 0;
  /** Persisted high-water mark: no write goes past it (see ExtentMeta.hwmBytes). */
  hwmBytes = 0;
  /** Bytes of records the index points at (padding included). */
  liveBytes = 0;
  /** Tombstones a compaction had to keep (they still shadow older puts elsewhere). */
  pinnedBytes = 0;
  /** Smallest record sequence number in the file; Infinity when empty. */
  minSeq = Infinity;
  /** No more appends (full, or a sync failed). */
  sealed = false;
  /** A fdatasync failed: nothing written here after the last good sync may be acknowledged. */
  syncFailed = false;
  /** Being written by compaction: not a compaction candidate. */
  compactionOutput = false;
  retired = false;
  #refs = 0;
  #closeWhenIdle = false;

  constructor(
    readonly no: number,
    readonly path: string,
    readonly handle: FileHandle,
    readonly sizeBytes: number,
  ) {}

  get garbageBytes(): number {
    return Math.max(0, this.tailBytes - this.liveBytes);
  }

  roomBytes(): number {
    return this.sealed ? 0 : this.sizeBytes - this.tailBytes;
  }

  /** Readers hold a reference so that a retired extent's descriptor outlives their pread. */
  acquire(): void {
    this.#refs++;
  }

  release(): void {
    this.#refs--;
    if (this.#refs === 0 && this.#closeWhenIdle) void this.handle.close().catch(() => undefined);
  }

  /** Closes the descriptor now or when the last reader lets go. */
  closeWhenIdle(): void {
    this.#closeWhenIdle = true;
    if (this.#refs === 0) void this.handle.close().catch(() => undefined);
  }
}
