import { FRAGMENT_HEADER_BYTES, type FragmentHeader, decodeFragmentHeader, encodeFragmentHeader, verifyFragment } from '@tw/block-format';
import type { Peer } from '@tw/transport';
import { fragmentProtocolErrors } from './errors.js';
import { type FragmentId, encodeFragmentId } from './fragment-id.js';
import { type CapacityInfo, type ListEntry, Op, decodeReply, encodeRequest } from './messages.js';

export interface FetchedFragment {
  readonly header: FragmentHeader;
  /** The fragment's bytes, checksum-verified: a view of `into` when given. */
  readonly bytes: Buffer;
  readonly seq: number;
}

/**
 * Typed calls of the fragment service over a transport peer. Every fragment read is verified
 * against its header's checksum before it is returned (TW_CHECKSUM_MISMATCH otherwise).
 */
export class FragmentClient {
  constructor(readonly peer: Peer) {}

  /** Persists a fragment; resolves once the node acknowledges it durable per its fsync policy. */
  async put(id: FragmentId, header: FragmentHeader, bytes: Uint8Array, signal?: AbortSignal): Promise<{ seq: number }> {
    verifyFragment(header, bytes);
    const reply = await this.#call(Op.PUT, { header: encodeRequest({ op: Op.PUT, id: encodeFragmentId(id) }), payload: [encodeFragmentHeader(header), bytes] }, signal);
    return { seq: (reply as { seq: number }).seq };
  }

  /**
   * Reads a fragment, or undefined when the node has none under that id. With `into` (at least
   * 64 + fragment bytes long) the bytes land in the caller's buffer.
   */
  async get(id: FragmentId, options: { into?: Uint8Array; signal?: AbortSignal } = {}): Promise<FetchedFragment | undefined> {
    const res = await this.peer.request(
      { header: encodeRequest({ op: Op.GET, id: encodeFragmentId(id) }) },
      { ...(options.into === undefined ? {} : { into: options.into }), ...(options.signal === undefined ? {} : { signal: options.signal }) },
    );
    const reply = decodeReply(res.header, Op.GET) as { found: boolean; seq: number };
    if (!reply.found) return undefined;
    const payload = Buffer.from(res.payload.buffer, res.payload.byteOffset, res.payload.byteLength);
    if (payload.length < FRAGMENT_HEADER_BYTES) {
      throw fragmentProtocolErrors.create('TW_FRAGMENT_BAD_REQUEST', `GET reply of ${payload.length} bytes holds no fragment header`);
    }
    const header = decodeFragmentHeader(payload.subarray(0, FRAGMENT_HEADER_BYTES));
    const bytes = payload.subarray(FRAGMENT_HEADER_BYTES);
    verifyFragment(header, bytes);
    if (header.blockVersion !== id.version || header.fragmentIndex !== id.index) {
      throw fragmentProtocolErrors.create('TW_FRAGMENT_MISMATCH', 'the node returned a fragment of another version or index');
    }
    return { header, bytes, seq: reply.seq };
  }

  async delete(id: FragmentId, signal?: AbortSignal): Promise<boolean> {
    const reply = await this.#call(Op.DELETE, { header: encodeRequest({ op: Op.DELETE, id: encodeFragmentId(id) }) }, signal);
    return (reply as { found: boolean }).found;
  }

  async stat(id: FragmentId, signal?: AbortSignal): Promise<{ sizeBytes: number; seq: number } | undefined> {
    const reply = (await this.#call(Op.STAT, { header: encodeRequest({ op: Op.STAT, id: encodeFragmentId(id) }) }, signal)) as { found: boolean; sizeBytes: number; seq: number };
    return reply.found ? { sizeBytes: reply.sizeBytes, seq: reply.seq } : undefined;
  }

  async list(prefix: Uint8Array, options: { after?: Uint8Array; limit?: number; signal?: AbortSignal } = {}): Promise<{ entries: ListEntry[]; next: Buffer | undefined }> {
    const header = encodeRequest({ op: Op.LIST, prefix, after: options.after ?? new Uint8Array(0), limit: options.limit ?? 100 });
    return (await this.#call(Op.LIST, { header }, options.signal)) as { entries: ListEntry[]; next: Buffer | undefined };
  }

  async capacity(signal?: AbortSignal): Promise<CapacityInfo> {
    const { op: _op, ...info } = (await this.#call(Op.CAPACITY, { header: encodeRequest({ op: Op.CAPACITY }) }, signal)) as CapacityInfo & { op: number };
    return info;
  }

  async #call(op: (typeof Op)[keyof typeof Op], request: { header: Uint8Array; payload?: readonly Uint8Array[] }, signal: AbortSignal | undefined) {
    const res = await this.peer.request(request, signal === undefined ? {} : { signal });
    return decodeReply(res.header, op);
  }
}
