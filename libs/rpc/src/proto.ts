import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

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

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(join(protoDir, file), LOADER_OPTIONS));
}

type ServiceCtor = grpc.ServiceClientConstructor;

function service(root: grpc.GrpcObject, path: string[]): ServiceCtor {
  let node: unknown = root;
  for (const p of path) node = (node as Record<string, unknown>)[p];
  return node as ServiceCtor;
}

const coordinatorRoot = load('coordinator.proto');
const raftRoot = load('raft.proto');

export const CoordinatorService: ServiceCtor = service(coordinatorRoot, ['tw', 'coordinator', 'v1', 'Coordinator']);
export const RaftPeerService: ServiceCtor = service(raftRoot, ['tw', 'raft', 'v1', 'RaftPeer']);
