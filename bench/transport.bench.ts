/**
 * Transport throughput: request/response over @tw/transport-tcp between two processes, against
 * raw node:net streaming of the same bytes between two processes, measured in the same run.
 *
 * - get.<size>.c<n>: a small request, a <size> response payload read into a caller buffer
 *   (`into`), <n> requests in flight. Baseline: raw.down, the server streaming bytes to the client.
 * - put.<size>.c<n>: a <size> request payload, a small reply. Baseline: raw.up.
 *
 * The file is also its own server: `node --conditions=tw-source --import tsx transport.bench.ts
 * --serve raw|tw` listens on 127.0.0.1, prints `{"address": ...}` and serves until killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { tcpTransport } from '@tw/transport-tcp';
import { median, round, scale, throughputGBps, withBaseline, type Metric } from './lib/harness.js';

const MiB = 1024 * 1024;
const here = fileURLToPath(import.meta.url);
const SIZES = [1 * MiB, 8 * MiB];
const INFLIGHT = [1, 16];
/** Largest reply the tw server sends (the largest size measured). */
const SERVE_MAX = 8 * MiB;
/** Raw baseline writers keep up to this much queued in user space before waiting for 'drain'. */
const QUEUED_MAX = 16 * MiB;
/** One warm-up batch (each is tens of MiB), then the harness's runs. */
const MEASURE = { warmupCalls: 1 };
/** Bytes moved per measured call: enough that the ramp at either end is small. */
const bytesPerBatch = (): number => scale(256, 32) * MiB;

// ---------------------------------------------------------------- server side (child process)

/**
 * Raw baseline server: 'D' + u32 MiB => streams that many MiB down; 'U' + u32 MiB => reads them,
 * acks 1 byte. It reads with onread into one reused buffer (the accepted socket's handle moved
 * into an onread socket, as transport-tcp's server does), so it is the ceiling, not a strawman.
 */
function serveRaw(): Promise<string> {
  const block = Buffer.alloc(4 * MiB, 0x5a);
  const readBuf = Buffer.allocUnsafe(4 * MiB);
  const server = createServer({ noDelay: true, pauseOnConnect: true }, (accepted: Socket) => {
    let pending = Buffer.alloc(0);
    let upLeft = 0;
    const holder = accepted as unknown as { _handle: unknown };
    const handle = holder._handle;
    holder._handle = null;
    const onBytes = (n: number): void => {
      if (upLeft > 0) {
        upLeft -= n;
        if (upLeft <= 0) socket.write(Buffer.from([1]));
        return;
      }
      pending = Buffer.concat([pending, readBuf.subarray(0, n)]);
      if (pending.length < 5) return;
      const op = String.fromCharCode(pending[0]!);
      const bytes = pending.readUInt32LE(1) * MiB;
      const rest = pending.length - 5;
      pending = Buffer.alloc(0);
      if (op === 'D') void streamDown(bytes);
      else {
        upLeft = bytes - rest;
        if (upLeft <= 0) socket.write(Buffer.from([1]));
      }
    };
    const socket = new Socket({ handle, readable: true, writable: true, onread: { buffer: readBuf, callback: (n: number) => (onBytes(n), true) } } as unknown as ConstructorParameters<typeof Socket>[0]);
    accepted.destroy();
    socket.setNoDelay(true);
    socket.resume();
    const streamDown = async (bytes: number): Promise<void> => {
      for (let left = bytes; left > 0; left -= block.length) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        socket.write(chunk);
        // Keep a few blocks queued (no bubble while the kernel drains), as the transport does.
        if (socket.writableLength >= QUEUED_MAX) await new Promise((r) => socket.once('drain', r));
      }
    };
    socket.on('error', () => undefined);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(`127.0.0.1:${(server.address() as { port: number }).port}`)));
}

/** Transport server: header = u8 op ('g' get: reply with u32 bytes of payload; 'p' put: accept). */
async function serveTw(): Promise<string> {
  const body = Buffer.alloc(SERVE_MAX, 0xa5);
  const transport = tcpTransport()({});
  const ok = Buffer.from('ok');
  // Put payloads land in pooled buffers, as a storage node receives into its write buffers.
  const free: Buffer[] = [];
  const listener = await transport.listen(
    '127.0.0.1:0',
    (req) => {
      if (req.header[0] === 0x67) return { header: ok, payload: body.subarray(0, req.header.readUInt32LE(1)) };
      if (req.payload.buffer.byteLength === SERVE_MAX) free.push(Buffer.from(req.payload.buffer, 0, SERVE_MAX));
      return { header: ok };
    },
    { payloadDestination: () => free.pop() ?? Buffer.allocUnsafeSlow(SERVE_MAX) },
  );
  return listener.address;
}

// ---------------------------------------------------------------- client side

async function startServer(mode: 'raw' | 'tw'): Promise<{ child: ChildProcess; address: string }> {
  const root = resolve(dirname(here), '..');
  const child = spawn(process.execPath, ['--conditions=tw-source', '--import', 'tsx', here, '--serve', mode], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${mode} server did not start in 30 s`)), 30_000);
    child.once('exit', (code) => fail(new Error(`${mode} server exited with ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      ok((JSON.parse(line) as { address: string }).address);
    });
  });
  return { child, address };
}

function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((ok) => child.once('exit', () => ok()));
  child.kill('SIGKILL');
  return gone;
}

/** A raw node:net client to the raw server: the ceiling for either direction. */
async function rawClient(address: string): Promise<{ down: () => Promise<number>; up: () => Promise<number>; close: () => void }> {
  const [host, port] = [address.split(':')[0]!, Number(address.split(':')[1])];
  // The strongest raw reader node:net offers: onread into one reused buffer (no allocation per read).
  const readBuf = Buffer.allocUnsafe(4 * MiB);
  let onBytes: (n: number) => void = () => undefined;
  const socket = connect({ host, port, noDelay: true, onread: { buffer: readBuf, callback: (n: number) => (onBytes(n), true) } });
  await new Promise((ok) => socket.once('connect', ok));
  const mibs = bytesPerBatch() / MiB;
  const cmd = (op: string): Buffer => {
    const b = Buffer.alloc(5);
    b.write(op, 0);
    b.writeUInt32LE(mibs, 1);
    return b;
  };
  const block = Buffer.alloc(4 * MiB, 0x3c);
  // Down: the server streams a batch; count it arriving.
  const down = (): Promise<number> =>
    throughputGBps(bytesPerBatch(), () =>
      new Promise<void>((ok) => {
        let left = bytesPerBatch();
        onBytes = (n) => {
          left -= n;
          if (left <= 0) ok();
        };
        socket.write(cmd('D'));
      }),
      MEASURE,
    );
  // Up: stream a batch from one reused block; the server acks when it has it all.
  const up = (): Promise<number> =>
    throughputGBps(bytesPerBatch(), async () => {
      const acked = new Promise<void>((ok) => (onBytes = () => ok()));
      socket.write(cmd('U'));
      for (let left = bytesPerBatch(); left > 0; left -= block.length) {
        socket.write(block);
        if (socket.writableLength >= QUEUED_MAX) await new Promise((r) => socket.once('drain', r));
      }
      await acked;
    }, MEASURE);
  return { down, up, close: () => socket.destroy() };
}

/**
 * For each size and concurrency: raw down, get, raw up, put, each baseline measured right next to
 * what it is compared with (the machine is shared; load drifts within a run).
 */
async function measureAll(rawAddress: string, twAddress: string): Promise<Metric[]> {
  const raw = await rawClient(rawAddress);
  const transport = tcpTransport()({});
  const peer = await transport.dial(twAddress);
  const out: Metric[] = [];
  const rawDown: number[] = [];
  const rawUp: number[] = [];
  try {
    for (const size of SIZES) {
      for (const inflight of INFLIGHT) {
        const count = Math.max(4 * inflight, Math.ceil(bytesPerBatch() / size));
        const getHeader = Buffer.alloc(5);
        getHeader[0] = 0x67;
        getHeader.writeUInt32LE(size, 1);
        const putHeader = Buffer.from([0x70]);
        // One destination / source buffer per worker, reused: what a gateway's pool would do.
        const intos = Array.from({ length: inflight }, () => transport.registerMemory(Buffer.alloc(size)).buffer);
        const sources = Array.from({ length: inflight }, () => Buffer.alloc(size, 0x11));
        const batch = async (op: (worker: number) => Promise<unknown>): Promise<void> => {
          let next = 0;
          await Promise.all(
            Array.from({ length: inflight }, async (_, w) => {
              while (next < count) {
                next++;
                await op(w);
              }
            }),
          );
        };
        const tag = `${size / MiB}MiB.c${inflight}`;
        const down = await raw.down();
        rawDown.push(down);
        const get = await throughputGBps(count * size, () => batch((w) => peer.request({ header: getHeader }, { into: intos[w]! })), MEASURE);
        out.push(withBaseline({ metric: `get.${tag}`, value: round(get), unit: 'GB/s' }, 'raw_tcp.down', down));
        const up = await raw.up();
        rawUp.push(up);
        const put = await throughputGBps(count * size, () => batch((w) => peer.request({ header: putHeader, payload: sources[w]! })), MEASURE);
        out.push(withBaseline({ metric: `put.${tag}`, value: round(put), unit: 'GB/s' }, 'raw_tcp.up', up));
      }
    }
  } finally {
    raw.close();
    await transport.close();
  }
  return [
    { metric: 'raw_tcp.down', value: round(median(rawDown)), unit: 'GB/s' },
    { metric: 'raw_tcp.up', value: round(median(rawUp)), unit: 'GB/s' },
    ...out,
  ];
}

export default async function run(): Promise<Metric[]> {
  const raw = await startServer('raw');
  try {
    const tw = await startServer('tw');
    try {
      return await measureAll(raw.address, tw.address);
    } finally {
      await stopServer(tw.child);
    }
  } finally {
    await stopServer(raw.child);
  }
}

const serveAt = process.argv.indexOf('--serve');
if (serveAt >= 0 && resolve(process.argv[1] ?? '') === here) {
  const mode = process.argv[serveAt + 1];
  const address = mode === 'raw' ? await serveRaw() : await serveTw();
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write(`${JSON.stringify({ address })}\n`);
}
