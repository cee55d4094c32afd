import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Checksum64Stream } from '@tw/block-format';
import { NATIVE_DELIVER_HEAD_BYTES_MAX, type ScatterEntry, validateDeliverFileName } from '@tw/client';
import { gatewayAppErrors } from './errors.js';

/** A value as the read path hands it out: its bytes in order, across one or more buffers. */
export interface ValueParts {
  readonly parts: readonly Buffer[];
  readonly sizeBytes: number;
}

export interface DeliverRequest {
  /** The gateway's delivery folder (absolute). */
  readonly dir: string;
  /** A plain file name in it, which the client created. */
  readonly file: string;
  readonly value: ValueParts;
  readonly tailBytes: number;
  readonly scatter: readonly ScatterEntry[];
  readonly signal?: AbortSignal;
}

/** Is a peer address one of this host's loopback addresses? DELIVER writes files on this host. */
export function isLoopback(host: string): boolean {
  return host === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Writes the last `tailBytes` bytes of a value into `dir/file` as the scatter list says: one
 * positional write per (scatter entry x value part) overlap, straight from the value's buffers
 * (no copy: they stay borrowed until this resolves), while the tail is hashed on this thread.
 * The file must be a regular file (not a link) that already spans every range: nothing is
 * created or extended. Resolves with the head (the value's bytes before the tail, copied) and
 * the xxh64 of the tail in value order.
 */
export async function deliverValue(r: DeliverRequest): Promise<{ head: Buffer; tailChecksum: bigint }> {
  validateDeliverFileName(r.file);
  const headBytes = r.value.sizeBytes - r.tailBytes;
  if (headBytes < 0) {
    throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_RANGE', `the value has ${r.value.sizeBytes} bytes, fewer than the ${r.tailBytes}-byte tail asked for`, {
      details: { valueBytes: r.value.sizeBytes, tailBytes: r.tailBytes },
    });
  }
  if (headBytes > NATIVE_DELIVER_HEAD_BYTES_MAX) {
    throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_RANGE', `the head before the tail would be ${headBytes} bytes, over ${NATIVE_DELIVER_HEAD_BYTES_MAX}`, {
      details: { valueBytes: r.value.sizeBytes, tailBytes: r.tailBytes },
    });
  }
  const path = join(r.dir, r.file);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_FILE', `cannot open ${r.file} in the delivery folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_FILE', `${r.file} is not a regular file`);
    for (const e of r.scatter) {
      if (e.fileOffset + e.bytes > st.size) {
        throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_FILE', `scatter range [${e.fileOffset}, +${e.bytes}) lies past the end of ${r.file} (${st.size} bytes); the gateway does not extend files`);
      }
    }
    r.signal?.throwIfAborted();
    // Where each part starts in the value.
    const starts: number[] = [];
    let at = 0;
    for (const p of r.value.parts) {
      starts.push(at);
      at += p.length;
    }
    if (at !== r.value.sizeBytes) throw new Error(`value parts hold ${at} bytes, the value ${r.value.sizeBytes}`);
    const writes: Promise<void>[] = [];
    for (const e of r.scatter) {
      let v = headBytes + e.tailOffset;
      let left = e.bytes;
      let pos = e.fileOffset;
      let i = partAt(starts, v);
      while (left > 0) {
        const part = r.value.parts[i]!;
        const off = v - starts[i]!;
        const n = Math.min(left, part.length - off);
        if (n <= 0) {
          i++;
          continue;
        }
        writes.push(writeFully(fh, part, off, n, pos));
        v += n;
        pos += n;
        left -= n;
        i++;
      }
    }
    // The writes run on the thread pool; the head and the checksum meanwhile on this thread.
    const head = Buffer.allocUnsafe(headBytes);
    const sum = new Checksum64Stream();
    r.value.parts.forEach((p, i) => {
      const s = starts[i]!;
      if (s < headBytes) p.copy(head, s, 0, Math.min(p.length, headBytes - s));
      const from = Math.max(0, headBytes - s);
      if (from < p.length) sum.update(p.subarray(from));
    });
    const results = await Promise.allSettled(writes);
    const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed !== undefined) {
      throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_FILE', `writing into ${r.file} failed: ${(failed.reason as NodeJS.ErrnoException).code ?? (failed.reason as Error).message}`, { cause: failed.reason });
    }
    return { head, tailChecksum: sum.digest() };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Index of the part holding value offset `v` (binary search over part starts). */
function partAt(starts: readonly number[], v: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

async function writeFully(fh: FileHandle, buf: Buffer, offset: number, bytes: number, position: number): Promise<void> {
  let done = 0;
  while (done < bytes) {
    const { bytesWritten } = await fh.write(buf, offset + done, bytes - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write at ${position + done}`);
    done += bytesWritten;
  }
}
