/**
 * What the simulator replicates: a generic state machine plus the client side of it. The KV
 * store (kv-service.ts) is one; the coordinator's block map can be another, by implementing
 * these two interfaces.
 */
import type { Model } from '../linearizability/model.js';
import type { Prng } from './prng.js';

/** The outcome of applying one committed command. */
export interface ApplyResult<Res> {
  /** The client request the command carried (`requestKey(clientId, seq)`), if any. */
  readonly requestKey: string;
  readonly result: Res;
}

/** One node's copy of the replicated state machine. Deterministic: same commands, same state. */
export interface SimStateMachine<Req, Res> {
  /** Applies a committed command (never an empty entry). Returns the reply for its request. */
  apply(data: Uint8Array, index: number): ApplyResult<Res> | undefined;
  /** Serves a read-only request from the current state (ReadIndex reads); undefined if `req` is not a read. */
  read(req: Req): Res | undefined;
  /** The whole state, for raft snapshots. */
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  /** A canonical digest of the state: equal states give equal digests. */
  digest(): string;
}

export interface SimService<Req, Res, S> {
  readonly name: string;
  newStateMachine(): SimStateMachine<Req, Res>;
  /** Encodes a client request as a log command that carries (clientId, seq) for de-duplication. */
  encode(clientId: number, seq: number, req: Req): Uint8Array;
  /** Whether the request may be served by a ReadIndex read instead of through the log. */
  isRead(req: Req): boolean;
  /** Draws the next request of a client. */
  nextRequest(rng: Prng, clientId: number): Req;
  /** The sequential model the clients' history is checked against. */
  readonly model: Model<S, Req, Res>;
}

export function requestKey(clientId: number, seq: number): string {
  return `${clientId}:${seq}`;
}
