import type { FileHandle, FileLayer, OpenMode, ReadOptions } from './file-layer.js';
import { byteLengthOf } from './file-layer.js';

/**
 * A file layer for tests that wraps another one and injects the failures a storage node meets:
 * torn writes (only a prefix of a write lands, then the "process" is dead), power loss (writes
 * not yet fdatasynced are lost from a seeded point on), bit flips on read or on disk, ENOSPC
 * after a byte budget, and EIO on chosen reads, writes or syncs. Randomness comes from `seed`,
 * so a failing test replays.
 */
export interface FaultPlan {
  /** Writes fail with ENOSPC once this many more bytes have been written (a prefix lands). */
  enospcAfterBytes?: number | undefined;
  /** The Nth write from now (1 = the next) lands only a seeded prefix; then the layer is crashed. */
  crashOnWrite?: number | undefined;
  /** Like crashOnWrite, then power loss: unsynced writes are undone from a seeded point on. */
  powerLossOnWrite?: number | undefined;
  eioOnWrite?: ((path: string, position: number, lengthBytes: number) => boolean) | undefined;
  eioOnRead?: ((path: string, position: number, lengthBytes: number) => boolean) | undefined;
  eioOnSync?: ((path: string) => boolean) | undefined;
  /** Flips one seeded bit of what this read returns (the disk stays intact). */
  flipOnRead?: ((path: string, position: number, lengthBytes: number) => boolean) | undefined;
}

interface UnsyncedWrite {
  path: string;
  position: number;
  old: Buffer;
}

export class FaultyFileLayer implements FileLayer {
  readonly faults: FaultPlan = {};
  #rand: () => number;
  #crashed = false;
  #unsynced: UnsyncedWrite[] = [];
  /** Bytes written through this layer so far. */
  writtenBytes = 0;
  writes = 0;

  constructor(
    readonly inner: FileLayer,
    seed: number,
  ) {
    this.#rand = mulberry32(seed);
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  /** A seeded integer in [0, n). */
  randomInt(n: number): number {
    return Math.floor(this.#rand() * n);
  }

  #check(): void {
    if (this.#crashed) throw errno('EIO', 'simulated crash: the file layer is dead');
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    this.#check();
    return new FaultyHandle(this, await this.inner.open(path, mode));
  }
  async stat(path: string) {
    this.#check();
    return this.inner.stat(path);
  }
  async unlink(path: string) {
    this.#check();
    this.#unsynced = this.#unsynced.filter((w) => w.path !== path);
    return this.inner.unlink(path);
  }
  async rename(fromPath: string, toPath: string) {
    this.#check();
    return this.inner.rename(fromPath, toPath);
  }
  async readdir(dir: string) {
    this.#check();
    return this.inner.readdir(dir);
  }
  async mkdir(dir: string) {
    this.#check();
    return this.inner.mkdir(dir);
  }
  async syncDir(dir: string) {
    this.#check();
    return this.inner.syncDir(dir);
  }
  async freeBytes(dir: string) {
    this.#check();
    const free = await this.inner.freeBytes(dir);
    const budget = this.faults.enospcAfterBytes;
    return budget === undefined ? free : Math.min(free, Math.max(0, budget));
  }

  /** Flips bit `bit` (0-7) of the byte at `position` of the file on disk. */
  async flipBitOnDisk(path: string, position: number, bit = 0): Promise<void> {
    const h = await this.inner.open(path, 'r+');
    try {
      const b = Buffer.alloc(1);
      await h.readv([b], position);
      b[0] = b[0]! ^ (1 << bit);
      await h.writev([b], position);
      await h.datasync();
    } finally {
      await h.close();
    }
  }

  /**
   * Power loss: of the writes not yet made durable by a datasync, a seeded prefix (in write
   * order) survives, the next one survives in part, and the rest are undone. The layer is dead
   * afterwards; open a new one on the same `inner` to "reboot". Returns how many writes were lost.
   */
  async powerLoss(): Promise<number> {
    const list = this.#unsynced;
    this.#unsynced = [];
    this.#crashed = true;
    const keep = this.randomInt(list.length + 1);
    for (let i = list.length - 1; i >= keep; i--) {
      const w = list[i]!;
      // The write at `keep` lands a prefix; later ones vanish.
      const prefix = i === keep ? this.randomInt(w.old.byteLength + 1) : 0;
      let h: FileHandle;
      try {
        h = await this.inner.open(w.path, 'r+');
      } catch {
        continue; // unlinked since
      }
      try {
        await h.writev([w.old.subarray(prefix)], w.position + prefix);
      } finally {
        await h.close();
      }
    }
    return list.length - keep;
  }

  /** Marks the layer dead without undoing anything (a process crash: the page cache survives). */
  crash(): void {
    this.#crashed = true;
  }

  /** @internal */
  async recordUnsynced(inner: FileHandle, position: number, lengthBytes: number): Promise<Buffer> {
    const old = Buffer.alloc(lengthBytes);
    await inner.readv([old], position);
    this.#unsynced.push({ path: inner.path, position, old });
    return old;
  }

  /** @internal */
  synced(path: string): void {
    this.#unsynced = this.#unsynced.filter((w) => w.path !== path);
  }

  /** @internal */
  truncated(path: string, sizeBytes: number): void {
    this.#unsynced = this.#unsynced.filter((w) => w.path !== path || w.position + w.old.byteLength <= sizeBytes);
  }

  /** @internal */
  check(): void {
    this.#check();
  }
}

class FaultyHandle implements FileHandle {
  constructor(
    readonly layer: FaultyFileLayer,
    readonly inner: FileHandle,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  async readv(buffers: readonly Uint8Array[], position: number, options?: ReadOptions): Promise<number> {
    this.layer.check();
    const len = byteLengthOf(buffers);
    const f = this.layer.faults;
    if (f.eioOnRead?.(this.path, position, len)) throw errno('EIO', `injected EIO on read of ${this.path}@${position}`);
    const n = await this.inner.readv(buffers, position, options);
    if (n > 0 && f.flipOnRead?.(this.path, position, n)) {
      let at = this.layer.randomInt(n);
      for (const b of buffers) {
        if (at < b.byteLength) {
          b[at] = b[at]! ^ (1 << this.layer.randomInt(8));
          break;
        }
        at -= b.byteLength;
      }
    }
    return n;
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    this.layer.check();
    const len = byteLengthOf(buffers);
    const f = this.layer.faults;
    if (f.eioOnWrite?.(this.path, position, len)) throw errno('EIO', `injected EIO on write of ${this.path}@${position}`);
    let allowed = len;
    let failure: Error | undefined;
    if (f.enospcAfterBytes !== undefined) {
      if (len > f.enospcAfterBytes) {
        allowed = Math.max(0, f.enospcAfterBytes);
        failure = errno('ENOSPC', 'injected ENOSPC');
      }
      f.enospcAfterBytes = Math.max(0, f.enospcAfterBytes - allowed);
    }
    this.layer.writes++;
    let crashNow = false;
    if (f.crashOnWrite !== undefined) {
      f.crashOnWrite--;
      if (f.crashOnWrite <= 0) {
        f.crashOnWrite = undefined;
        allowed = Math.min(allowed, this.layer.randomInt(len + 1));
        crashNow = true;
      }
    }
    let powerLoss = false;
    if (f.powerLossOnWrite !== undefined) {
      f.powerLossOnWrite--;
      if (f.powerLossOnWrite <= 0) {
        f.powerLossOnWrite = undefined;
        allowed = Math.min(allowed, this.layer.randomInt(len + 1));
        crashNow = true;
        powerLoss = true;
      }
    }
    if (allowed > 0) {
      const old = await this.layer.recordUnsynced(this.inner, position, allowed);
      const part = allowed === len ? [...buffers] : clip(buffers, allowed);
      await this.inner.writev(part, position);
      this.layer.writtenBytes += allowed;
      if (this.layer.crashed && !crashNow) {
        // Landed after the power went: it never happened.
        await this.inner.writev([old], position);
        throw errno('EIO', 'simulated crash: the file layer is dead');
      }
    }
    if (powerLoss) {
      await this.layer.powerLoss();
      throw errno('EIO', 'simulated power loss during a write');
    }
    if (crashNow) {
      this.layer.crash();
      throw errno('EIO', 'simulated crash during a write (torn write)');
    }
    if (failure !== undefined) throw failure;
  }

  async datasync(): Promise<void> {
    this.layer.check();
    if (this.layer.faults.eioOnSync?.(this.path)) throw errno('EIO', `injected EIO on fdatasync of ${this.path}`);
    await this.inner.datasync();
    // A sync that completes after the power went proves nothing.
    this.layer.check();
    this.layer.synced(this.path);
  }

  async truncate(sizeBytes: number): Promise<void> {
    this.layer.check();
    await this.inner.truncate(sizeBytes);
    this.layer.truncated(this.path, sizeBytes);
  }

  async allocate(sizeBytes: number): Promise<void> {
    this.layer.check();
    return this.inner.allocate(sizeBytes);
  }

  async stat(): Promise<{ sizeBytes: number }> {
    this.layer.check();
    return this.inner.stat();
  }

  close(): Promise<void> {
    // Always closes the real descriptor, even after a simulated crash: tests must not leak fds.
    return this.inner.close();
  }
}

function clip(buffers: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = n;
  for (const b of buffers) {
    if (left <= 0) break;
    out.push(b.byteLength <= left ? b : b.subarray(0, left));
    left -= b.byteLength;
  }
  return out;
}

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** Small seeded PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
