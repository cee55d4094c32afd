import { Checksum64Stream, FRAGMENT_HEADER_BYTES, blockFormatErrors, decodeFragmentHeader } from '@tw/block-format';
import type { ExtentStore, PutStream } from '@tw/extent-store';
import { decodeFragmentId, fragmentIdKeyHash, fragmentProtocolErrors } from '@tw/fragment-protocol';

/** Received bytes are handed to the extent store in pieces of at least this much (fewer, larger pwrites). */
export const STREAMED_PUT_PIECE_BYTES = 1024 * 1024;
/**
 * Streamed puts in progress at most; further PUTs are received whole, then written. Streaming
 * shortens one put's latency (its write overlaps its transfer); with many puts in flight the
 * requests already overlap each other, and the extra write calls only cost CPU (measured: 256 KiB
 * puts at 16 in flight lost half their throughput when all were streamed in 128 KiB pieces).
 */
export const STREAMED_PUTS_MAX = 2;

/**
 * One PUT whose fragment is written to its extent as it comes off the socket (PayloadSink
 * progress), so that a put costs transfer + the final sync instead of transfer + write + sync.
 *
 * Checked before the acknowledgement, as the fragment handler does before it writes: the fragment
 * header must belong to the id and the fragment bytes must match its checksum (hashed as they
 * arrive, while they are in cache). A failed check abandons the record: it never becomes visible.
 *
 * Ownership: `buffer` (the receive buffer) is read by the extent store's writes until `finish`
 * or `abandon` settles; only then may it be recycled.
 */
export class StreamedPut {
  #received = 0;
  #handed = 0;
  #hashed = 0;
  readonly #fragmentHash = new Checksum64Stream();
  #stream: PutStream | undefined;
  readonly #opening: Promise<PutStream>;
  #abandoned = false;
  /** Set once every byte is in: undefined when the fragment checked out, else why not. */
  #verdict: { error: unknown } | undefined;

  constructor(
    store: ExtentStore,
    readonly id: Uint8Array,
    readonly buffer: Buffer,
    readonly payloadBytes: number,
  ) {
    this.#opening = store.beginPut(id, payloadBytes);
    this.#opening.then(
      (stream) => {
        if (this.#abandoned) {
          void stream.abandon();
          return;
        }
        this.#stream = stream;
        this.#pump(true);
      },
      () => undefined, // surfaces in finish()
    );
  }

  /** Transport progress: `buffer[0, receivedBytes)` is in. Hashes the new bytes, writes full pieces. */
  onBytes(receivedBytes: number): void {
    const from = Math.max(this.#hashed, FRAGMENT_HEADER_BYTES);
    if (receivedBytes > from) {
      this.#fragmentHash.update(this.buffer.subarray(from, receivedBytes));
      this.#hashed = receivedBytes;
    }
    this.#received = receivedBytes;
    if (receivedBytes === this.payloadBytes && this.#verdict === undefined) {
      // Checked before the last piece goes to the store: that write makes the record valid on disk.
      try {
        this.#verify();
        this.#verdict = { error: undefined };
      } catch (err) {
        this.#verdict = { error: err };
      }
    }
    this.#pump(false);
  }

  /** Every byte is in (the handler runs): verify, write the rest, wait for durability. */
  async finish(): Promise<number> {
    const stream = await this.#opening;
    if (this.#received !== this.payloadBytes) this.onBytes(this.payloadBytes);
    if (this.#verdict?.error !== undefined) throw this.#verdict.error;
    this.#pump(true);
    const { seq } = await stream.finish();
    return seq;
  }

  /** Gives the record up; resolves once no write reads `buffer` any more. */
  async abandon(reason?: unknown): Promise<void> {
    this.#abandoned = true;
    const stream = this.#stream ?? (await this.#opening.catch(() => undefined));
    await stream?.abandon(reason);
  }

  #pump(all: boolean): void {
    const stream = this.#stream;
    if (stream === undefined || stream.abandoned || this.#abandoned) return;
    const pending = this.#received - this.#handed;
    if (pending === 0) return;
    // The bytes that complete the payload go only once the fragment checked out.
    if (this.#received === this.payloadBytes && this.#verdict?.error !== undefined) return;
    if (!all && pending < STREAMED_PUT_PIECE_BYTES && this.#received < this.payloadBytes) return;
    stream.write(this.buffer.subarray(this.#handed, this.#received), this.#handed);
    this.#handed = this.#received;
  }

  /** Same checks as checkFragmentPayload, with the fragment checksum computed on the way in. */
  #verify(): void {
    const id = decodeFragmentId(this.id);
    const header = decodeFragmentHeader(this.buffer.subarray(0, FRAGMENT_HEADER_BYTES));
    if (header.blockVersion !== id.version || header.fragmentIndex !== id.index || header.keyHash !== fragmentIdKeyHash(id)) {
      throw fragmentProtocolErrors.create('TW_FRAGMENT_MISMATCH', 'fragment header does not match the fragment id it was sent under', {
        details: { version: String(id.version), index: id.index },
      });
    }
    const fragmentBytes = this.payloadBytes - FRAGMENT_HEADER_BYTES;
    if (fragmentBytes !== header.fragmentLength) {
      throw blockFormatErrors.create('TW_CHECKSUM_MISMATCH', `fragment has ${fragmentBytes} bytes; header says ${header.fragmentLength}`, {
        details: { fragmentIndex: header.fragmentIndex },
      });
    }
    if (this.#fragmentHash.digest() !== header.fragmentChecksum) {
      throw blockFormatErrors.create('TW_CHECKSUM_MISMATCH', `fragment ${header.fragmentIndex} checksum mismatch`, { details: { fragmentIndex: header.fragmentIndex } });
    }
  }
}
