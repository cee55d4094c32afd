import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { llamaOffloadErrors } from './errors.js';
import type { StateFilePlan } from './state-file.js';

/**
 * llama.cpp's sequence state file, written block by block while the other blocks are still on
 * the wire: each verified block's sections go straight to their offsets (positional writes, no
 * gather copy), so staging overlaps fetching and only the load itself follows the last block.
 * One restore owns one; `close()` before handing the path to llama.cpp.
 */
export class StagedStateFile {
  readonly #fh: FileHandle;
  readonly #plan: StateFilePlan;
  readonly #written = new Set<number>();
  #closed = false;

  private constructor(fh: FileHandle, plan: StateFilePlan) {
    this.#fh = fh;
    this.#plan = plan;
  }

  /**
   * Opens `path` (creating it when absent), sets it to the plan's size and writes the file's fixed
   * headers. An existing file is not emptied first: a file kept between restores keeps its pages
   * (tmpfs allocates and zeroes a page on first write, a cost paid once), and the plan's sections
   * and headers cover every byte of it, so nothing of a previous state survives a complete write.
   */
  static async create(path: string, plan: StateFilePlan): Promise<StagedStateFile> {
    // Read back too: a restore by DELIVER checks what the gateway wrote.
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.truncate(plan.fileBytes);
      const f = new StagedStateFile(fh, plan);
      await Promise.all(plan.headers.map((h) => f.#writeAt(h.bytes, 0, h.bytes.length, h.fileOffset)));
      return f;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Blocks written so far. */
  get blocksWritten(): number {
    return this.#written.size;
  }

  /**
   * Writes block `i`'s payload (already verified: only bytes that passed their checksum go into
   * a file llama.cpp will load) into its place. The payload must stay unmodified until this
   * resolves.
   */
  async writeBlock(i: number, payload: Buffer): Promise<void> {
    if (this.#closed) throw llamaOffloadErrors.create('TW_LLAMA_STAGING', 'staged state file is closed');
    if (this.#written.has(i)) throw llamaOffloadErrors.create('TW_LLAMA_STAGING', `block ${i} was already staged`);
    const places = this.#plan.placeBlock(i);
    const end = places.reduce((a, p) => Math.max(a, p.payloadOffset + p.bytes), 0);
    if (end !== payload.length) throw llamaOffloadErrors.create('TW_LLAMA_STATE_FORMAT', `block ${i}: payload of ${payload.length} bytes, the plan places ${end}`);
    await Promise.all(places.map((p) => this.#writeAt(payload, p.payloadOffset, p.bytes, p.fileOffset)));
    this.#written.add(i);
  }

  async #writeAt(buf: Buffer, offset: number, bytes: number, position: number): Promise<void> {
    let done = 0;
    // A regular file takes a whole write at once; loop anyway rather than trust it.
    while (done < bytes) {
      const { bytesWritten } = await this.#fh.write(buf, offset + done, bytes - done, position + done);
      if (bytesWritten <= 0) throw llamaOffloadErrors.create('TW_LLAMA_STAGING', `short write staging the state file at ${position + done}`);
      done += bytesWritten;
    }
  }

  /** Reads `bytes` bytes at `offset` back (what was written there, by this process or another). */
  async read(offset: number, bytes: number): Promise<Buffer> {
    const out = Buffer.alloc(bytes);
    let done = 0;
    while (done < bytes) {
      const { bytesRead } = await this.#fh.read(out, done, bytes - done, offset + done);
      if (bytesRead <= 0) throw llamaOffloadErrors.create('TW_LLAMA_STAGING', `the staged state file ends before ${offset + done}`);
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }
}
