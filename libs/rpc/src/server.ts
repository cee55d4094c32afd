import * as grpc from '@grpc/grpc-js';
import { rpcErrors } from './errors.js';
import { lookupResponseSerializer } from './lookup-response-codec.js';
import type { AckMsg, ClusterMapMsg, CoordinatorUnary, MessageBatchMsg, SnapshotChunkMsg, WatchClusterMapRequestMsg } from './messages.js';
import { CoordinatorService, RaftPeerService } from './proto.js';
import { toServiceError } from './status.js';

export interface CallContext {
  /** Aborts when the client cancels or its deadline passes. */
  readonly signal: AbortSignal;
  readonly peer: string;
}

export type UnaryImpl<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

export type CoordinatorImpl = { [M in keyof CoordinatorUnary]: UnaryImpl<CoordinatorUnary[M][0], CoordinatorUnary[M][1]> } & {
  /** Pushes each new cluster map until the signal aborts (the client went away). */
  watchClusterMap(request: WatchClusterMapRequestMsg, push: (map: ClusterMapMsg) => Promise<void>, context: CallContext): Promise<void>;
};

export interface RaftPeerImpl {
  step(batch: MessageBatchMsg, context: CallContext): Promise<void>;
  /** Receives one snapshot's chunks in order; resolves when the last one is handled. */
  installSnapshot(chunks: AsyncIterable<SnapshotChunkMsg>, context: CallContext): Promise<void>;
}

type AnyServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>;

/**
 * A call's context. The AbortController and the peer string are made only when a handler asks
 * for them, and a cancellation that comes after the handler finished builds no error: grpc-js
 * reports 'cancelled' at the end of most unary calls, and a coded error (with its stack) plus an
 * AbortController per call showed up as ~2 % of a coordinator's CPU under lookups and Raft
 * heartbeats.
 */
function contextOf(call: AnyServerCall): CallContext & { finish(): void } {
  let ac: AbortController | undefined;
  let cancelled = false;
  let finished = false;
  const reason = (): Error => rpcErrors.create('TW_RPC_ABORTED', 'client cancelled the call');
  (call as unknown as NodeJS.EventEmitter).on('cancelled', () => {
    if (finished || cancelled) return;
    cancelled = true;
    ac?.abort(reason());
  });
  let peer: string | undefined;
  return {
    get signal(): AbortSignal {
      if (ac === undefined) {
        ac = new AbortController();
        if (cancelled) ac.abort(reason());
      }
      return ac.signal;
    },
    get peer(): string {
      return (peer ??= call.getPeer());
    },
    finish(): void {
      finished = true;
    },
  };
}

function unary<Req, Res>(impl: UnaryImpl<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const ctx = contextOf(call as grpc.ServerUnaryCall<unknown, unknown>);
    impl(call.request, ctx).then(
      (res) => {
        ctx.finish();
        callback(null, res);
      },
      (err: unknown) => {
        ctx.finish();
        callback(toServiceError(err) as grpc.ServiceError);
      },
    );
  };
}

const COORDINATOR_UNARY: readonly (keyof CoordinatorUnary)[] = [
  'lookupPrefix',
  'commitBlocks',
  'deleteBlocks',
  'registerNode',
  'heartbeat',
  'createNamespace',
  'getNamespace',
  'listNamespaces',
  'deleteNamespace',
  'reportBadFragments',
  'checkFragments',
  'verifyNamespaceToken',
];

/** Registers the Coordinator service on a gRPC server. */
export function addCoordinatorService(server: grpc.Server, impl: CoordinatorImpl): void {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of COORDINATOR_UNARY) {
    const method = m.charAt(0).toUpperCase() + m.slice(1);
    const fn = impl[m] as UnaryImpl<unknown, unknown>;
    handlers[method] = unary(fn.bind(impl));
  }
  handlers['WatchClusterMap'] = ((call: grpc.ServerWritableStream<WatchClusterMapRequestMsg, ClusterMapMsg>) => {
    const ctx = contextOf(call as grpc.ServerWritableStream<unknown, unknown>);
    const push = (map: ClusterMapMsg): Promise<void> =>
      new Promise((resolve) => {
        if (ctx.signal.aborted) return resolve();
        if (call.write(map)) resolve();
        else call.once('drain', () => resolve());
      });
    impl.watchClusterMap(call.request, push, ctx).then(
      () => call.end(),
      (err: unknown) => call.destroy(Object.assign(new Error((err as Error).message), toServiceError(err))),
    );
  }) as grpc.handleServerStreamingCall<WatchClusterMapRequestMsg, ClusterMapMsg>;
  // LookupPrefix answers with packed records skip protobufjs's two copies of the records.
  const def = CoordinatorService.service;
  const lookup = def['LookupPrefix']!;
  server.addService({ ...def, LookupPrefix: { ...lookup, responseSerialize: lookupResponseSerializer(lookup.responseSerialize) } }, handlers);
}

/** Closers of a server's long-lived streams, run before it shuts down (which waits for open calls). */
const streamClosers = new WeakMap<grpc.Server, Set<() => void>>();

/** Registers the Raft peer service on a gRPC server. */
export function addRaftPeerService(server: grpc.Server, impl: RaftPeerImpl): void {
  let closers = streamClosers.get(server);
  if (closers === undefined) {
    closers = new Set();
    streamClosers.set(server, closers);
  }
  const open = closers;
  server.addService(RaftPeerService.service, {
    Step: unary<MessageBatchMsg, AckMsg>(async (req, ctx) => {
      await impl.step(req, ctx);
      return {};
    }),
    StepStream: ((call: grpc.ServerReadableStream<MessageBatchMsg, AckMsg>, callback: grpc.sendUnaryData<AckMsg>) => {
      const ctx = contextOf(call as grpc.ServerReadableStream<unknown, unknown>);
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        open.delete(finish);
        ctx.finish();
        callback(null, {});
      };
      open.add(finish);
      // Batches are handed over in arrival order; step() of a raft node only queues them.
      call.on('data', (batch: MessageBatchMsg) => void impl.step(batch, ctx).catch(() => undefined));
      call.on('end', finish);
      call.on('error', () => {
        done = true;
        open.delete(finish);
      });
      call.on('cancelled', () => {
        done = true;
        open.delete(finish);
      });
    }) as grpc.handleClientStreamingCall<MessageBatchMsg, AckMsg>,
    InstallSnapshot: ((call: grpc.ServerReadableStream<SnapshotChunkMsg, AckMsg>, callback: grpc.sendUnaryData<AckMsg>) => {
      impl.installSnapshot(call as AsyncIterable<SnapshotChunkMsg>, contextOf(call as grpc.ServerReadableStream<unknown, unknown>)).then(
        () => callback(null, {}),
        (err: unknown) => callback(toServiceError(err) as grpc.ServiceError),
      );
    }) as grpc.handleClientStreamingCall<SnapshotChunkMsg, AckMsg>,
  });
}

export interface RunningGrpcServer {
  readonly server: grpc.Server;
  /** `host:port` with the bound port. */
  readonly address: string;
  /** Graceful: waits for calls in flight (up to `graceMs`), then forces. */
  close(graceMs?: number): Promise<void>;
}

/** Binds a gRPC server (insecure: loopback or a trusted network; TLS is a deployment concern). */
export async function startGrpcServer(address: string, register: (server: grpc.Server) => void): Promise<RunningGrpcServer> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  register(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(rpcErrors.create('TW_RPC_LISTEN_FAILED', `gRPC server cannot bind ${address}: ${err.message}`, { cause: err }));
      else resolve(p);
    });
  });
  const host = address.slice(0, address.lastIndexOf(':'));
  return {
    server,
    address: `${host}:${port}`,
    close(graceMs = 5000) {
      // Long-lived streams (Raft StepStream) would hold a graceful shutdown for its whole grace.
      for (const close of [...(streamClosers.get(server) ?? [])]) close();
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}
