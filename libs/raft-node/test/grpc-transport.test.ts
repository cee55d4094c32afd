/**
 * GrpcRaftTransport over real gRPC on loopback: batches on StepStream arrive in order per lane,
 * a peer that goes away fails the send (raft reports it unreachable) and a peer that comes back
 * is reached again on a new stream, and a peer that predates StepStream gets unary Steps.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, test } from 'vitest';
import { type MessageBatchMsg, type RunningGrpcServer, addRaftPeerService, startGrpcServer } from '@tw/rpc';
import { GrpcRaftTransport } from '../src/index.js';
import { freePort } from '@tw/testkit';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


/** A RaftPeer server that records what it receives (each message is its sender's text). */
async function peer(port: number, got: string[]): Promise<RunningGrpcServer> {
  const server = await startGrpcServer(`127.0.0.1:${port}`, (s) =>
    addRaftPeerService(s, {
      step: async (batch: MessageBatchMsg) => {
        for (const m of batch.messages) got.push(m.toString());
      },
      installSnapshot: async () => undefined,
    }),
  );
  return server;
}

const msg = (s: string): Buffer => Buffer.from(s);

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('GrpcRaftTransport', () => {
  test('keeps each lane in order on its stream, and reaches a peer again after it restarts', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const got: string[] = [];
    let server = await peer(port, got);
    cleanups.push(() => server.close(0));
    const t = new GrpcRaftTransport(1, new Map([[2, `127.0.0.1:${port}`]]));
    cleanups.push(() => t.close());
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      sends.push(t.send(2, [msg(`read-${i}`)], 'read'));
      sends.push(t.send(2, [msg(`log-${i}a`), msg(`log-${i}b`)], 'log'));
    }
    await Promise.all(sends);
    await eventually(() => got.length === 600, 'all 600 messages');
    const lane = (p: string): string[] => got.filter((m) => m.startsWith(p));
    expect(lane('read-')).toEqual(Array.from({ length: 200 }, (_, i) => `read-${i}`));
    expect(lane('log-')).toEqual(Array.from({ length: 200 }, (_, i) => [`log-${i}a`, `log-${i}b`]).flat());

    // The peer goes away: sends fail (within the step timeout) instead of piling up.
    await server.close(0);
    let failed = 0;
    for (let i = 0; i < 20 && failed === 0; i++) {
      await t.send(2, [msg('lost')], 'read').catch(() => failed++);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(failed).toBe(1);
    // It comes back on the same address: a new stream reaches it.
    server = await peer(port, got);
    got.length = 0;
    await eventually(() => {
      void t.send(2, [msg('again')], 'read').catch(() => undefined);
      return got.includes('again');
    }, 'a send to the restarted peer');
  });

  // A hang detector, not a speed check: without closing its streams the server waits until the
  // grace period (here a minute) or a keepalive ping (10 s) ends them; with it, milliseconds.
  test('a server shuts down without waiting for the streams its peers keep open', { timeout: 8_000 }, async () => {
    const port = await freePort();
    const got: string[] = [];
    const server = await peer(port, got);
    const t = new GrpcRaftTransport(1, new Map([[2, `127.0.0.1:${port}`]]));
    cleanups.push(() => t.close());
    await t.send(2, [msg('x')], 'read');
    await eventually(() => got.length === 1, 'the first message');
    // The peer keeps sending (heartbeats), as a running coordinator does.
    const beat = setInterval(() => void t.send(2, [msg('beat')], 'read').catch(() => undefined), 10);
    cleanups.push(() => clearInterval(beat));
    await server.close(60_000);
  });

  test('falls back to unary Step for a peer without StepStream', { timeout: 20_000 }, async () => {
    const protoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'rpc', 'proto');
    const def = protoLoader.loadSync(join(protoDir, 'raft.proto'), { keepCase: false, longs: String, enums: String, defaults: true, arrays: true, objects: false, oneofs: true, bytes: Buffer });
    const service = (grpc.loadPackageDefinition(def) as unknown as { tw: { raft: { v1: { RaftPeer: grpc.ServiceClientConstructor } } } }).tw.raft.v1.RaftPeer.service;
    const got: string[] = [];
    const old = new grpc.Server();
    // An older peer: only the unary Step (grpc-js answers UNIMPLEMENTED for the rest).
    old.addService(service, {
      Step: (call: grpc.ServerUnaryCall<MessageBatchMsg, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        for (const m of call.request.messages) got.push(m.toString());
        cb(null, {});
      },
    });
    const port = await new Promise<number>((resolve, reject) => old.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    cleanups.push(() => void old.forceShutdown());
    const t = new GrpcRaftTransport(1, new Map([[2, `127.0.0.1:${port}`]]));
    cleanups.push(() => t.close());
    // What goes out before the peer answers UNIMPLEMENTED may be lost (raft resends); after that,
    // every batch arrives by unary Step.
    for (let i = 0; i < 5; i++) {
      await t.send(2, [msg(`warm-${i}`)], 'read').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (let i = 0; i < 5; i++) await t.send(2, [msg(`m${i}`)], 'read');
    expect(got.slice(-5)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(got).toContain('warm-4');
  });
});
