import { type NodeId } from '@tw/raft';
import { type RaftPeerImpl, RaftPeerClient, type RaftStepStream, type SnapshotChunkMsg } from '@tw/rpc';
import { raftNodeErrors } from './errors.js';
import { SNAPSHOT_CHUNK_BYTES, STEP_TIMEOUT_MS } from './limits.js';
import type { RaftNode, RaftPeerTransport } from './raft-node.js';

/**
 * Raft messages between coordinators over gRPC's RaftPeer service: one long-lived StepStream per
 * peer and lane (heartbeats and ReadIndex apart from appends), as etcd keeps a stream per peer. A
 * unary Step per batch cost each hop of a ReadIndex round ~1 ms on a loaded 2-core machine (call
 * set-up, headers, trailers, and an Ack that the sender handles too); a message on an open stream
 * is one DATA frame. A stream that ends or fails is reopened by the next send; a peer that
 * predates StepStream (UNIMPLEMENTED) gets unary Steps.
 */
export class GrpcRaftTransport implements RaftPeerTransport {
  readonly #clients = new Map<NodeId, RaftPeerClient>();
  readonly #streams = new Map<string, RaftStepStream>();
  readonly #unaryOnly = new Set<NodeId>();
  constructor(
    readonly self: NodeId,
    readonly peers: ReadonlyMap<NodeId, string>,
  ) {}

  #client(to: NodeId): RaftPeerClient {
    let c = this.#clients.get(to);
    if (c === undefined) {
      const address = this.peers.get(to);
      if (address === undefined) throw raftNodeErrors.create('TW_RAFT_NODE_BAD_MESSAGE', `no address for raft peer ${to}`);
      c = new RaftPeerClient(address);
      this.#clients.set(to, c);
    }
    return c;
  }

  async send(to: NodeId, messages: Buffer[], lane: 'read' | 'log' = 'log'): Promise<void> {
    const batch = { from: String(this.self), messages };
    if (this.#unaryOnly.has(to)) {
      await this.#client(to).step(batch, STEP_TIMEOUT_MS);
      return;
    }
    const key = `${to}:${lane}`;
    let stream = this.#streams.get(key);
    if (stream?.unimplemented === true) {
      // The batches written before the peer answered UNIMPLEMENTED are lost (raft resends).
      this.#unaryOnly.add(to);
      this.#streams.delete(key);
      await this.#client(to).step(batch, STEP_TIMEOUT_MS);
      return;
    }
    if (stream?.ended === true) {
      // It ended after its last write was taken (the peer went away or shut down): what was
      // written last may be lost, so report this send as failed (raft marks the peer
      // unreachable and probes it); the next send opens a new stream.
      this.#streams.delete(key);
      throw stream.endReason;
    }
    if (stream === undefined) {
      stream = this.#client(to).stepStream();
      this.#streams.set(key, stream);
    }
    try {
      await stream.write(batch, STEP_TIMEOUT_MS);
    } catch (err) {
      if (this.#streams.get(key) === stream) this.#streams.delete(key);
      if (!stream.unimplemented) throw err;
      this.#unaryOnly.add(to);
      await this.#client(to).step(batch, STEP_TIMEOUT_MS);
    }
  }

  async sendSnapshot(to: NodeId, header: Buffer, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const self = String(this.self);
    async function* frames(): AsyncGenerator<SnapshotChunkMsg> {
      yield { from: self, metadata: header, data: Buffer.alloc(0), last: false };
      for await (const chunk of chunks) {
        const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        for (let off = 0; off < b.length; off += SNAPSHOT_CHUNK_BYTES) {
          yield { from: self, metadata: Buffer.alloc(0), data: b.subarray(off, off + SNAPSHOT_CHUNK_BYTES), last: false };
        }
      }
      yield { from: self, metadata: Buffer.alloc(0), data: Buffer.alloc(0), last: true };
    }
    await this.#client(to).installSnapshot(frames());
  }

  close(): void {
    for (const s of this.#streams.values()) s.close();
    this.#streams.clear();
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/** The server side of the RaftPeer service, feeding a RaftNode. */
export function raftPeerService(node: () => RaftNode | undefined): RaftPeerImpl {
  return {
    async step(batch) {
      node()?.receive(batch.messages);
    },
    async installSnapshot(chunks) {
      const it = chunks[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.metadata.length === 0) throw raftNodeErrors.create('TW_RAFT_NODE_BAD_MESSAGE', 'snapshot stream without a header');
      const target = node();
      if (target === undefined) throw raftNodeErrors.create('TW_RAFT_NODE_STOPPED', 'raft node not running');
      async function* data(): AsyncGenerator<Uint8Array> {
        for (;;) {
          const n = await it.next();
          // A stream that ends without its last frame was cut (the sender died): never install it.
          if (n.done) throw raftNodeErrors.create('TW_RAFT_NODE_BAD_MESSAGE', 'snapshot stream ended before its last chunk');
          if (n.value.data.length > 0) yield n.value.data;
          if (n.value.last) return;
        }
      }
      await target.receiveSnapshot(first.value.metadata, data());
    },
  };
}
