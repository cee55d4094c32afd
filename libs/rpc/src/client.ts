import * as grpc from '@grpc/grpc-js';
import { TwError } from '@tw/errors';
import { rpcErrors } from './errors.js';
import type { AckMsg, ClusterMapMsg, CoordinatorMethod, CoordinatorUnary, MessageBatchMsg, SnapshotChunkMsg } from './messages.js';
import { CoordinatorService, RaftPeerService } from './proto.js';
import { fromServiceError, leaderHint } from './status.js';

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2_000,
  // HTTP/2's initial 64 KiB receive window would stall a 1,024-record LookupPrefix answer
  // (~130 KB packed) for a WINDOW_UPDATE round trip: open the window at connect.
  'grpc-node.flow_control_window': 8 * 1024 * 1024,
};

type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function callUnary<Req, Res>(client: RawClient, method: string, request: Req, deadlineMs: number, signal: AbortSignal | undefined): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    if (signal?.aborted) return reject(rpcErrors.create('TW_RPC_ABORTED', 'call aborted', { cause: signal.reason }));
    const call = client[method]!(request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Res) => {
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(fromServiceError(err));
      else resolve(res);
    }) as grpc.ClientUnaryCall;
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface CoordinatorClientOptions {
  /** Per-attempt deadline (default 5 s). */
  readonly deadlineMs?: number;
  /** Attempts per call across leader changes and unreachable coordinators (default 12). */
  readonly attemptsMax?: number;
  /** First backoff between attempts; doubles up to backoffMaxMs (defaults 20 ms, 1 s). */
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
  /** Sleeps between attempts (tests pass a fake clock); default setTimeout. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(rpcErrors.create('TW_RPC_ABORTED', 'call aborted', { cause: signal.reason }));
      },
      { once: true },
    );
  });

/**
 * A client of the coordinator group: it sends each call to the coordinator it believes leads,
 * follows NOT_LEADER hints, moves on from unreachable coordinators, and retries retryable
 * failures with bounded exponential backoff. Mutations carry request ids, so a retry of a
 * commit that did take effect is answered with its original result.
 */
export class CoordinatorClient {
  readonly #clients = new Map<string, RawClient>();
  readonly #addresses: string[];
  #preferred: string;
  readonly #deadlineMs: number;
  readonly #attemptsMax: number;
  readonly #backoffMs: number;
  readonly #backoffMaxMs: number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(addresses: readonly string[], options: CoordinatorClientOptions = {}) {
    if (addresses.length === 0) throw rpcErrors.create('TW_RPC_UNAVAILABLE', 'no coordinator addresses given');
    this.#addresses = [...addresses];
    this.#preferred = this.#addresses[0]!;
    this.#deadlineMs = options.deadlineMs ?? 5000;
    this.#attemptsMax = options.attemptsMax ?? 12;
    this.#backoffMs = options.backoffMs ?? 20;
    this.#backoffMaxMs = options.backoffMaxMs ?? 1000;
    this.#sleep = options.sleep ?? defaultSleep;
  }

  /** The coordinator the next call goes to first. */
  get leaderGuess(): string {
    return this.#preferred;
  }

  #client(address: string): RawClient {
    let c = this.#clients.get(address);
    if (c === undefined) {
      c = new CoordinatorService(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RawClient;
      this.#clients.set(address, c);
    }
    return c;
  }

  /** One unary call with leader following and retries. */
  async call<M extends CoordinatorMethod>(method: M, request: CoordinatorUnary[M][0], options: { signal?: AbortSignal; deadlineMs?: number } = {}): Promise<CoordinatorUnary[M][1]> {
    let backoff = this.#backoffMs;
    let last: TwError | undefined;
    for (let attempt = 0; attempt < this.#attemptsMax; attempt++) {
      const target = this.#preferred;
      try {
        return await callUnary<CoordinatorUnary[M][0], CoordinatorUnary[M][1]>(this.#client(target), method, request, options.deadlineMs ?? this.#deadlineMs, options.signal);
      } catch (err) {
        const e = fromServiceError(err);
        if (e.code === 'TW_RPC_ABORTED' || !e.retryable) throw e;
        last = e;
        const hint = e.code === 'TW_NOT_LEADER' ? leaderHint(e) : undefined;
        if (hint !== undefined && this.#addresses.includes(hint) && hint !== target) {
          this.#preferred = hint; // follow the hint at once
          continue;
        }
        // No usable hint: try the next coordinator after a backoff.
        const i = this.#addresses.indexOf(target);
        this.#preferred = this.#addresses[(i + 1) % this.#addresses.length]!;
        await this.#sleep(backoff, options.signal);
        backoff = Math.min(backoff * 2, this.#backoffMaxMs);
      }
    }
    throw last ?? rpcErrors.create('TW_RPC_UNAVAILABLE', 'no coordinator answered');
  }

  /**
   * Streams cluster maps from the preferred coordinator; calls `onMap` for each. Returns a stop
   * function. Reconnects (to the next coordinator) when the stream breaks, until stopped.
   */
  watchClusterMap(onMap: (map: ClusterMapMsg) => void, onError?: (err: TwError) => void): () => void {
    let stopped = false;
    let knownEpoch = '0';
    let call: grpc.ClientReadableStream<ClusterMapMsg> | undefined;
    let backoff = this.#backoffMs;
    const open = (): void => {
      if (stopped) return;
      const target = this.#preferred;
      call = (this.#client(target) as unknown as { watchClusterMap(req: unknown): grpc.ClientReadableStream<ClusterMapMsg> }).watchClusterMap({ knownEpoch });
      call.on('data', (map: ClusterMapMsg) => {
        backoff = this.#backoffMs;
        knownEpoch = map.epoch;
        onMap(map);
      });
      const retry = (err?: unknown): void => {
        if (stopped) return;
        call?.removeAllListeners();
        if (err !== undefined) onError?.(fromServiceError(err));
        const i = this.#addresses.indexOf(target);
        this.#preferred = this.#addresses[(i + 1) % this.#addresses.length]!;
        setTimeout(open, backoff).unref();
        backoff = Math.min(backoff * 2, this.#backoffMaxMs);
      };
      call.on('error', retry);
      call.on('end', () => retry());
    };
    open();
    return () => {
      stopped = true;
      call?.cancel();
    };
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/** A client of one coordinator's Raft peer service. */
export class RaftPeerClient {
  readonly #client: RawClient;
  constructor(readonly address: string) {
    this.#client = new RaftPeerService(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RawClient;
  }

  step(batch: MessageBatchMsg, deadlineMs = 2000): Promise<AckMsg> {
    return callUnary<MessageBatchMsg, AckMsg>(this.#client, 'step', batch, deadlineMs, undefined);
  }

  /** Opens a StepStream: message batches to this peer on one long-lived call (see RaftStepStream). */
  stepStream(): RaftStepStream {
    return new RaftStepStream(this.#client);
  }

  /** Streams a snapshot in chunks; resolves when the peer has installed it. */
  installSnapshot(chunks: AsyncIterable<SnapshotChunkMsg>, deadlineMs = 120_000, signal?: AbortSignal): Promise<AckMsg> {
    return new Promise<AckMsg>((resolve, reject) => {
      const call = (this.#client as unknown as { installSnapshot(md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<AckMsg>): grpc.ClientWritableStream<SnapshotChunkMsg> }).installSnapshot(
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err ? reject(fromServiceError(err)) : resolve(res ?? {})),
      );
      signal?.addEventListener('abort', () => call.cancel(), { once: true });
      void (async () => {
        try {
          for await (const chunk of chunks) {
            if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
          }
          call.end();
        } catch (err) {
          call.cancel();
          reject(fromServiceError(err));
        }
      })();
    });
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * One long-lived StepStream call. `write` resolves once the batch is handed to the connection
 * (not when the peer has read it) and rejects when the call has ended, ends meanwhile, or the
 * batch is not taken within `timeoutMs` (the peer stopped reading: the call is cancelled). Once
 * ended, a stream stays ended: open another. A peer that predates StepStream ends it at once with
 * gRPC status UNIMPLEMENTED, and `unimplemented` turns true (use the unary Step with it).
 */
export class RaftStepStream {
  readonly #call: grpc.ClientWritableStream<MessageBatchMsg>;
  readonly #pending = new Set<(err?: Error) => void>();
  #ended: Error | undefined;
  /** True when the peer answered UNIMPLEMENTED (it only has the unary Step). */
  unimplemented = false;

  constructor(client: RawClient) {
    const open = (client as unknown as { stepStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<AckMsg>): grpc.ClientWritableStream<MessageBatchMsg> }).stepStream;
    this.#call = open.call(client, new grpc.Metadata(), {}, (err) => {
      if (err?.code === grpc.status.UNIMPLEMENTED) this.unimplemented = true;
      this.#end(err ? fromServiceError(err) : rpcErrors.create('TW_RPC_UNAVAILABLE', 'raft step stream ended by the peer'));
    });
    // Errors also reach the callback above; a listener keeps an 'error' event from throwing.
    this.#call.on('error', () => undefined);
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  /** Why it ended (undefined while open). */
  get endReason(): Error | undefined {
    return this.#ended;
  }

  write(batch: MessageBatchMsg, timeoutMs = 2000): Promise<void> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        if (!this.#pending.delete(done)) return;
        clearTimeout(timer);
        if (err === undefined) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => {
        this.cancel();
        done(rpcErrors.create('TW_RPC_UNAVAILABLE', `raft step stream: a batch was not taken within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.add(done);
      this.#call.write(batch, (err: Error | null | undefined) => done(err ?? undefined));
    });
  }

  /** Ends the call (the peer answers it) or, with `cancel`, drops it. */
  close(): void {
    if (this.#ended !== undefined) return;
    this.#end(rpcErrors.create('TW_RPC_UNAVAILABLE', 'raft step stream closed'));
    this.#call.end();
  }

  cancel(): void {
    this.#end(rpcErrors.create('TW_RPC_UNAVAILABLE', 'raft step stream cancelled'));
    this.#call.cancel();
  }

  #end(err: Error): void {
    this.#ended ??= err;
    for (const done of [...this.#pending]) done(this.#ended);
  }
}
