/**
 * A key-value store as a replicated state machine, with client sessions: every command carries
 * (clientId, seq) and the machine remembers each client's last seq and reply, so a retried
 * command is applied once and answered again with the same reply (Raft thesis section 6.3).
 */
import { kvModel, type KvInput, type KvKeyState, type KvOutput } from '../linearizability/kv-model.js';
import { requestKey, type ApplyResult, type SimService, type SimStateMachine } from './service.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Command {
  readonly c: number;
  readonly s: number;
  readonly op: KvInput;
}

export class KvStateMachine implements SimStateMachine<KvInput, KvOutput> {
  private kv = new Map<string, string>();
  private sessions = new Map<number, { seq: number; result: KvOutput }>();

  apply(data: Uint8Array): ApplyResult<KvOutput> | undefined {
    const cmd = JSON.parse(dec.decode(data)) as Command;
    const key = requestKey(cmd.c, cmd.s);
    const session = this.sessions.get(cmd.c);
    if (session !== undefined && cmd.s <= session.seq) {
      // A duplicate (retry) of the last request: same reply, no effect. Older ones: no effect.
      return cmd.s === session.seq ? { requestKey: key, result: session.result } : undefined;
    }
    const result = this.exec(cmd.op);
    this.sessions.set(cmd.c, { seq: cmd.s, result });
    return { requestKey: key, result };
  }

  private exec(op: KvInput): KvOutput {
    const cur = this.kv.get(op.key) ?? null;
    switch (op.op) {
      case 'get':
        return { value: cur };
      case 'put':
        this.kv.set(op.key, op.value);
        return {};
      case 'delete':
        this.kv.delete(op.key);
        return {};
      case 'append':
        this.kv.set(op.key, (cur ?? '') + op.value);
        return {};
      case 'cas':
        if (cur !== op.expected) return { ok: false };
        this.kv.set(op.key, op.value);
        return { ok: true };
    }
  }

  read(req: KvInput): KvOutput | undefined {
    return req.op === 'get' ? { value: this.kv.get(req.key) ?? null } : undefined;
  }

  snapshot(): Uint8Array {
    return enc.encode(this.digest());
  }

  restore(data: Uint8Array): void {
    const s = JSON.parse(dec.decode(data)) as { kv: [string, string][]; sessions: [number, { seq: number; result: KvOutput }][] };
    this.kv = new Map(s.kv);
    this.sessions = new Map(s.sessions);
  }

  digest(): string {
    const kv = [...this.kv].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const sessions = [...this.sessions].sort((a, b) => a[0] - b[0]);
    return JSON.stringify({ kv, sessions });
  }
}

export interface KvWorkloadOptions {
  /** Number of distinct keys (fewer keys: more contention, longer per-key histories). */
  readonly keys?: number;
  /** Share of reads among requests. */
  readonly readShare?: number;
}

/** The KV service for the simulator: gets, puts, appends, cas and deletes over a few keys. */
export function kvService(options: KvWorkloadOptions = {}): SimService<KvInput, KvOutput, KvKeyState> {
  const keys = options.keys ?? 3;
  const readShare = options.readShare ?? 0.4;
  return {
    name: 'kv',
    newStateMachine: () => new KvStateMachine(),
    encode: (c, s, op) => enc.encode(JSON.stringify({ c, s, op } satisfies Command)),
    isRead: (req) => req.op === 'get',
    nextRequest(rng, clientId) {
      const key = `k${rng.int(keys)}`;
      if (rng.chance(readShare)) return { op: 'get', key };
      // Unique values make the history easier to check: each value has one writer.
      const value = `${clientId}.${rng.int(1_000_000)}`;
      const r = rng.int(10);
      if (r < 5) return { op: 'put', key, value };
      if (r < 8) return { op: 'append', key, value: `,${value}` };
      if (r < 9) return { op: 'cas', key, expected: null, value };
      return { op: 'delete', key };
    },
    model: kvModel,
  };
}
