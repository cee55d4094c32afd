import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { encodeMessageBatch } from './message-batch-codec.js';

/** proto/ sits next to src/ and dist/, so the same relative path works from both. */
const protoDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'proto');

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: false,
  oneofs: true,
  bytes: Buffer,
};

function load(file: string, patch?: (def: protoLoader.PackageDefinition) => void): grpc.GrpcObject {
  const def = protoLoader.loadSync(join(protoDir, file), LOADER_OPTIONS);
  patch?.(def);
  return grpc.loadPackageDefinition(def);
}

type ServiceCtor = grpc.ServiceClientConstructor;

function service(root: grpc.GrpcObject, path: string[]): ServiceCtor {
  let node: unknown = root;
  for (const p of path) node = (node as Record<string, unknown>)[p];
  return node as ServiceCtor;
}

const coordinatorRoot = load('coordinator.proto');
// Raft sends go through a hand-written MessageBatch encoder (one copy of each message instead
// of protobufjs's op list and copy); the receiving side decodes with the generated decoder.
const raftRoot = load('raft.proto', (def) => {
  const svc = def['tw.raft.v1.RaftPeer'] as Record<string, { requestSerialize: (m: never) => Buffer }>;
  for (const method of ['Step', 'StepStream']) svc[method]!.requestSerialize = encodeMessageBatch as (m: never) => Buffer;
});

export const CoordinatorService: ServiceCtor = service(coordinatorRoot, ['tw', 'coordinator', 'v1', 'Coordinator']);
export const RaftPeerService: ServiceCtor = service(raftRoot, ['tw', 'raft', 'v1', 'RaftPeer']);
