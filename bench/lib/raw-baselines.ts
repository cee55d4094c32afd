/** Baselines measured in the same run as a data-path benchmark (BENCH.md). */
import { CONNECTIONS_PER_PEER_MAX_DEFAULT } from '@tw/transport';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
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
): Promise<{ child: ChildProcess; hello: Record<string, unknown> }> {
  const child = spawn(process.execPath, [...nodeFlags, '--conditions=tw-source', '--import', 'tsx', file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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

  static async start(): Promise<RawTcp> {
    const { child, hello } = await spawnTs(join(here, 'raw-tcp-peer.ts'));
    return new RawTcp(child, Number(hello['port']));
  }

  async stop(): Promise<void> {
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

  async #connect(): Promise<Socket> {
    const sock = connect({ host: '127.0.0.1', port: this.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return sock;
  }

  /**
   * Client -> server: `count` messages of `size` bytes, `inflight` unacknowledged at once, spread
   * over `connections` sockets (default: as many as @tw/transport-tcp pools per peer, so that the
   * ceiling uses as many TCP streams as the path it is compared with). Returns GB/s.
   */
  async send(size: number, count: number, inflight: number, connections = CONNECTIONS_PER_PEER_MAX_DEFAULT): Promise<number> {
    const socks = await Promise.all(Array.from({ length: Math.min(connections, inflight) }, () => this.#connect()));
    const payload = Buffer.alloc(size, 0x33);
    const t0 = process.hrtime.bigint();
    await Promise.all(socks.map((sock, i) => this.#sendOn(sock, payload, share(count, socks.length, i), share(inflight, socks.length, i))));
    const ns = Number(process.hrtime.bigint() - t0);
    for (const sock of socks) sock.destroy();
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
      sock.on('data', (c: Buffer) => {
        acks += c.length;
        if (acks >= count) resolve();
        else pump();
      });
      pump();
    });
  }

  /**
   * Server -> client: `count` replies of `size` bytes, `inflight` requests outstanding. Returns
   * GB/s. Reads with `onread` into one reused buffer (no allocation per read): the strongest
   * reader node:net offers, so this is a ceiling for a Node data path, not a strawman.
   */
  async receive(size: number, count: number, inflight: number, connections = CONNECTIONS_PER_PEER_MAX_DEFAULT): Promise<number> {
    const n = Math.min(connections, inflight);
    const runs = await Promise.all(Array.from({ length: n }, (_, i) => this.#receiveOn(size, share(count, n, i), share(inflight, n, i))));
    const t0 = process.hrtime.bigint();
    await Promise.all(runs.map((start) => start()));
    const ns = Number(process.hrtime.bigint() - t0);
    return (size * count) / ns;
  }

  /** Connects; the returned function runs the transfer and closes the socket. */
  async #receiveOn(size: number, count: number, inflight: number): Promise<() => Promise<void>> {
    const readBuf = Buffer.allocUnsafe(4 * 1024 * 1024);
    const header = Buffer.alloc(4);
    let headerHave = 0;
    let pendingBytes = 0;
    let requested = 0;
    let received = 0;
    let done: (() => void) | undefined;
    let pump: () => void = () => undefined;
    const onBytes = (n: number): void => {
      let at = 0;
      while (at < n) {
        if (pendingBytes === 0) {
          const take = Math.min(4 - headerHave, n - at);
          readBuf.copy(header, headerHave, at, at + take);
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
            done?.();
            return;
          }
          pump();
        }
      }
    };
    const sock = connect({ host: '127.0.0.1', port: this.port, noDelay: true, onread: { buffer: readBuf, callback: (n: number) => (onBytes(n), true) } });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return async () => {
      if (count > 0) await transfer();
      sock.destroy();
    };
    function transfer(): Promise<void> {
      return new Promise<void>((resolve) => {
        done = resolve;
        pump = (): void => {
          while (requested < count && requested - received < inflight) {
            const head = Buffer.allocUnsafe(5);
            head[0] = 2;
            head.writeUInt32LE(size, 1);
            sock.write(head);
            requested++;
          }
        };
        pump();
      });
    }
  }
}

/** The i-th of n near-equal parts of total. */
function share(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

/**
 * Raw sequential file write of `count` x `size` bytes with the storage node's group-commit
 * cadence and the same number of writes in flight (BENCH.md): a write is acknowledged by the
 * first fdatasync after it, a sync runs at least every `syncEveryMs`, and once `inflight` writes
 * wait for one, the writer syncs before it writes more (with `inflight` 1: one sync per write).
 * Then a sequential read of the same bytes. GB/s.
 */
export function rawDisk(dir: string, size: number, count: number, syncEveryMs: number, inflight = Infinity): { writeGBps: number; readGBps: number } {
  const file = join(dir, `raw-disk-${size}.bin`);
  const buf = Buffer.alloc(size, 0x44);
  const fd = openSync(file, 'w+');
  try {
    let lastSync = performance.now();
    let unsynced = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      writeSync(fd, buf, 0, size, i * size);
      unsynced++;
      if (unsynced >= inflight || performance.now() - lastSync >= syncEveryMs) {
        fdatasyncSync(fd);
        lastSync = performance.now();
        unsynced = 0;
      }
    }
    fdatasyncSync(fd);
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
