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

/** A value or a promise of it: state machines may be synchronous (the KV store) or asynchronous (the block map). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One node's copy of the replicated state machine. Deterministic: same commands, same state.
 * Every method may return a promise; the simulator awaits it before it processes the next event,
 * so an asynchronous machine whose promises settle without real I/O or timers (e.g. over an
 * in-memory store) replays exactly. The time an apply takes is not simulated.
 */
export interface SimStateMachine<Req, Res> {
  /** Applies a committed command (never an empty entry). Returns the reply for its request. */
  apply(data: Uint8Array, index: number): MaybePromise<ApplyResult<Res> | undefined>;
  /** Serves a read-only request from the current state (ReadIndex reads); undefined if `req` is not a read. */
  read(req: Req): MaybePromise<Res | undefined>;
  /** The whole state, for raft snapshots. */
  snapshot(): MaybePromise<Uint8Array>;
  restore(data: Uint8Array): MaybePromise<void>;
  /** A canonical digest of the state: equal states give equal digests. */
  digest(): MaybePromise<string>;
  /**
   * For a machine whose state survives a crash (see SimService.newStateMachine): the raft index
   * its state reflects at least. Absent: the machine is volatile and rebuilt from raft's snapshot.
   */
  durableIndex?(): number;
}

export interface SimService<Req, Res, S> {
  readonly name: string;
  /**
   * A node's state machine at boot. On a restart `crashed` is the machine of the incarnation that
   * crashed: a volatile machine ignores it (the node restores raft's durable snapshot and raft
   * replays the log); a durable one reopens what survived and reports it with `durableIndex()`.
   */
  newStateMachine(crashed?: SimStateMachine<Req, Res>): MaybePromise<SimStateMachine<Req, Res>>;
  /**
   * Requests an administrator runs once, in order, before the workload starts (retried until
   * answered; not part of the checked history): e.g. creating the namespace the clients use.
   */
  readonly setup?: readonly Req[];
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
