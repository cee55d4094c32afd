/**
 * The only way the extent store touches files. The real implementation wraps node:fs
 * (node-file-layer.ts); tests swap in a fault-injecting one (faulty-file-layer.ts).
 *
 * Positions and sizes are in bytes. Methods reject with the system error (errno `code` kept);
 * the store turns those into coded TwErrors.
 */

export type OpenMode =
  /** read only; the file must exist */
  | 'r'
  /** read and write; the file must exist */
  | 'r+'
  /** read and write; creates the file and fails (EEXIST) if it exists */
  | 'create';

/** How a read may be carried out. */
export interface ReadOptions {
  /**
   * The caller waits on this read to answer a request (a get) and would take a synchronous read
   * on its own thread where the layer expects the bytes in the page cache: a thread-pool hand-off
   * costs more than copying a MiB on this project's VMs. Background scans leave it unset.
   */
  readonly latencySensitive?: boolean;
}

export interface FileHandle {
  readonly path: string;
  /** preadv: fills the buffers in order from `position`; returns the bytes read (short at EOF). */
  readv(buffers: readonly Uint8Array[], position: number, options?: ReadOptions): Promise<number>;
  /** pwritev: writes every byte of the buffers at `position` or rejects. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<void>;
  /** fdatasync: every byte written so far is on stable storage when this resolves. */
  datasync(): Promise<void>;
  /** ftruncate to `sizeBytes` (bytes past it are gone; growing reads back zeros). */
  truncate(sizeBytes: number): Promise<void>;
  /** Makes the file at least `sizeBytes` long; the new bytes read as zeros. */
  allocate(sizeBytes: number): Promise<void>;
  stat(): Promise<{ sizeBytes: number }>;
  close(): Promise<void>;
}

export interface FileLayer {
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** undefined when the path does not exist. */
  stat(path: string): Promise<{ sizeBytes: number } | undefined>;
  unlink(path: string): Promise<void>;
  rename(fromPath: string, toPath: string): Promise<void>;
  /** Names (not paths) in `dir`. */
  readdir(dir: string): Promise<string[]>;
  /** mkdir -p */
  mkdir(dir: string): Promise<void>;
  /** Makes creations, renames and unlinks in `dir` durable (fsync of the directory). */
  syncDir(dir: string): Promise<void>;
  /** Bytes an unprivileged process can still write in the file system holding `dir`. */
  freeBytes(dir: string): Promise<number>;
}

/** Total length of a list of buffers. */
export function byteLengthOf(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}
