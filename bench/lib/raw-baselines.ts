/** Baselines measured in the same run as a data-path benchmark (BENCH.md). */
import { CONNECTIONS_PER_PEER_MAX_DEFAULT } from '@tw/transport';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Starts a TypeScript file as a child process; resolves with it and its first stdout JSON line. */
export async function spawnTs(
  file: string,
  args: string[] = [],
  ready: (line: Record<string, unknown>) => boolean = () => true,
  nodeFlags: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ child: ChildProcess; hello: Record<string, unknown> }> {
  const child = spawn(process.execPath, [...nodeFlags, '--conditions=tw-source', '--import', 'tsx', file, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (!ready(obj)) continue;
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(obj);
        return;
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before it was ready`)));
  });
  return { child, hello };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(t);
}

/** A raw TCP peer process and a client to it. */
export class RawTcp {
  private constructor(
    private readonly child: ChildProcess,
    private readonly port: number,
  ) {}

  /** The peer process's pid (for CPU accounting). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(): Promise<RawTcp> {
    const { child, hello } = await spawnTs(join(here, 'raw-tcp-peer.ts'));
    return new RawTcp(child, Number(hello['port']));
  }

  async stop(): Promise<void> {
    for (const sock of this.#senders) sock.destroy();
    for (const r of this.#receivers) r.sock.destroy();
    await stopChild(this.child);
  }

  /**
   * Untimed traffic both ways before any timed run: a fresh peer process and fresh sockets run
   * 3-7x below their steady rate for the first few hundred messages (JIT, TCP buffer autotuning;
   * measured: 256 KiB sends at 1 in flight 0.20 -> 0.56 -> 1.38 GB/s over the first three runs of
   * 384). The paths compared with this baseline get their own warm-up, so this one gets one too.
   */
  async warmUp(rounds = 3): Promise<void> {
    for (let r = 0; r < rounds; r++) {
      for (const inflight of [1, 16]) {
        await this.send(256 * 1024, 384, inflight);
        await this.receive(256 * 1024, 384, inflight);
        await this.send(4 * 1024 * 1024, 24, inflight);
        await this.receive(4 * 1024 * 1024, 24, inflight);
      }
    }
  }

  /** Long-lived sockets, as the paths compared with this baseline keep their connections. */
  readonly #senders: Socket[] = [];
  readonly #receivers: Receiver[] = [];

  async #connect(onread?: { buffer: Buffer; callback: (n: number) => boolean }): Promise<Socket> {
    const sock = connect({ host: '127.0.0.1', port: this.port, noDelay: true, ...(onread === undefined ? {} : { onread }) });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return sock;
  }

  async #sendSockets(n: number): Promise<Socket[]> {
    while (this.#senders.length < n) this.#senders.push(await this.#connect());
    return this.#senders.slice(0, n);
  }

  async #receiveSockets(n: number): Promise<Receiver[]> {
    while (this.#receivers.length < n) {
      const r: Receiver = { sock: undefined as unknown as Socket, buf: Buffer.allocUnsafe(4 * 1024 * 1024), onBytes: () => undefined };
      r.sock = await this.#connect({ buffer: r.buf, callback: (n: number) => (r.onBytes(n), true) });
      this.#receivers.push(r);
    }
    return this.#receivers.slice(0, n);
  }

  /**
   * Client -> server: `count` messages of `size` bytes, `inflight` unacknowledged at once, spread
   * over `connections` long-lived sockets (default: as many as @tw/transport-tcp pools per peer,
   * so that the ceiling uses as many TCP streams as the path it is compared with). GB/s.
   */
  async send(size: number, count: number, inflight: number, connections = CONNECTIONS_PER_PEER_MAX_DEFAULT): Promise<number> {
    const socks = await this.#sendSockets(Math.min(connections, inflight));
    const payload = Buffer.alloc(size, 0x33);
    const t0 = process.hrtime.bigint();
    await Promise.all(socks.map((sock, i) => this.#sendOn(sock, payload, share(count, socks.length, i), share(inflight, socks.length, i))));
    const ns = Number(process.hrtime.bigint() - t0);
    return (size * count) / ns;
  }

  async #sendOn(sock: Socket, payload: Buffer, count: number, inflight: number): Promise<void> {
    const size = payload.length;
    let acks = 0;
    let sent = 0;
    if (count === 0) return;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < count && sent - acks < inflight) {
          const head = Buffer.allocUnsafe(5);
          head[0] = 1;
          head.writeUInt32LE(size, 1);
          sock.cork();
          sock.write(head);
          sock.write(payload);
          sock.uncork();
          sent++;
        }
      };
      const onData = (c: Buffer): void => {
        acks += c.length;
        if (acks >= count) {
          sock.off('data', onData);
          resolve();
        } else pump();
      };
      sock.on('data', onData);
      pump();
    });
  }

  /**
   * Server -> client: `count` replies of `size` bytes, `inflight` requests outstanding, over
   * long-lived sockets. GB/s. Reads with `onread` into one reused buffer per socket (no
   * allocation per read): the strongest reader node:net offers, so this is a ceiling for a Node
   * data path, not a strawman.
   */
  async receive(size: number, count: number, inflight: number, connections = CONNECTIONS_PER_PEER_MAX_DEFAULT): Promise<number> {
    const receivers = await this.#receiveSockets(Math.min(connections, inflight));
    const t0 = process.hrtime.bigint();
    await Promise.all(receivers.map((r, i) => receiveOn(r, size, share(count, receivers.length, i), share(inflight, receivers.length, i))));
    const ns = Number(process.hrtime.bigint() - t0);
    return (size * count) / ns;
  }
}

interface Receiver {
  sock: Socket;
  readonly buf: Buffer;
  /** Where the socket's onread callback delivers; set by each transfer (a transfer ends on a message boundary). */
  onBytes: (n: number) => void;
}

/** Requests `count` replies of `size` bytes on `r`, `inflight` at once; resolves when all arrived. */
function receiveOn(r: Receiver, size: number, count: number, inflight: number): Promise<void> {
  if (count === 0) return Promise.resolve();
  const header = Buffer.alloc(4);
  let headerHave = 0;
  let pendingBytes = 0;
  let requested = 0;
  let received = 0;
  return new Promise<void>((resolve) => {
    const pump = (): void => {
      while (requested < count && requested - received < inflight) {
        const head = Buffer.allocUnsafe(5);
        head[0] = 2;
        head.writeUInt32LE(size, 1);
        r.sock.write(head);
        requested++;
      }
    };
    r.onBytes = (n: number): void => {
      let at = 0;
      while (at < n) {
        if (pendingBytes === 0) {
          const take = Math.min(4 - headerHave, n - at);
          r.buf.copy(header, headerHave, at, at + take);
          headerHave += take;
          at += take;
          if (headerHave < 4) return;
          pendingBytes = header.readUInt32LE(0);
          headerHave = 0;
          if (pendingBytes === 0) continue;
        }
        const take = Math.min(pendingBytes, n - at);
        pendingBytes -= take;
        at += take;
        if (pendingBytes === 0) {
          received++;
          if (received >= count) {
            r.onBytes = () => undefined;
            resolve();
            return;
          }
          pump();
        }
      }
    };
    pump();
  });
}

/** The i-th of n near-equal parts of total. */
function share(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

/**
 * Raw sequential file write of `count` x `size` bytes with the storage node's group-commit
 * policy and the same number of writes in flight (BENCH.md), then a sequential read of the same
 * bytes. GB/s. As in the node: the file is sized up front (sparse), writes go on while an
 * fdatasync runs in the thread pool, a write is acknowledged by the first sync that starts after
 * it, a sync starts when none is running and `syncEveryMs` has passed since the last one began
 * (or `inflight` writes wait for one), and the writer stops once `inflight` writes are
 * unacknowledged. With `inflight` 1: write, sync, write, sync.
 */
export async function rawDisk(dir: string, size: number, count: number, syncEveryMs: number, inflight = Infinity): Promise<{ writeGBps: number; readGBps: number }> {
  const file = join(dir, `raw-disk-${size}.bin`);
  const buf = Buffer.alloc(size, 0x44);
  const fd = openSync(file, 'w+');
  try {
    ftruncateSync(fd, size * count);
    let uncovered = 0; // written, no sync started since
    let covered = 0; // written, covered by the running sync
    let syncing: Promise<void> | undefined;
    let lastSyncAt = -Infinity;
    const startSync = (): void => {
      covered = uncovered;
      uncovered = 0;
      lastSyncAt = performance.now();
      syncing = new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))).then(() => {
        covered = 0;
        syncing = undefined;
      });
    };
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      while (uncovered + covered >= inflight) {
        if (syncing === undefined) startSync();
        await syncing;
      }
      writeSync(fd, buf, 0, size, i * size);
      uncovered++;
      if (syncing === undefined && (performance.now() - lastSyncAt >= syncEveryMs || uncovered >= inflight)) startSync();
    }
    while (syncing !== undefined || uncovered > 0) {
      if (syncing === undefined) startSync();
      await syncing;
    }
    const writeNs = Number(process.hrtime.bigint() - t0);
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) readSync(fd, buf, 0, size, i * size);
    const readNs = Number(process.hrtime.bigint() - t1);
    return { writeGBps: (size * count) / writeNs, readGBps: (size * count) / readNs };
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}
