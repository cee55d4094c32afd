import type { Message, NodeId } from './types.js';

interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

function key(ctx: Uint8Array | undefined): string {
  return ctx === undefined ? '' : Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('latin1');
}

/** Leader-side ReadIndex requests waiting for a quorum of heartbeat acknowledgements (etcd's readOnly). */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  get size(): number {
    return this.queue.length;
  }

  addRequest(index: number, m: Message): void {
    const k = key(m.context);
    if (this.pending.has(k)) return;
    this.pending.set(k, { req: m, index, acks: new Set() });
    this.queue.push(k);
  }

  /** Records an ack of the request with `ctx`; returns who acked so far, or undefined if unknown. */
  recvAck(id: NodeId, ctx: Uint8Array | undefined): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(key(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Dequeues every request up to and including the one with `ctx` (a quorum acked it, so all earlier ones too). */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const k = key(ctx);
    const at = this.queue.indexOf(k);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const d of done) {
      const rs = this.pending.get(d);
      if (rs !== undefined) out.push(rs);
      this.pending.delete(d);
    }
    return out;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    const last = this.queue[this.queue.length - 1];
    return last === undefined ? undefined : this.pending.get(last)?.req.context;
  }
}
