/**
 * A minimal pipelined RESP2 client for benchmarks: one TCP connection, commands written as they
 * come (pipelined), replies matched in order. Used against the gateway's RESP front-end and
 * against redis-server alike, so both pay the same client cost.
 */
import { connect, type Socket } from 'node:net';
import { encodeCommand, RespReplyParser, type RespReply } from '@tw/engine-protocols';

interface Pending {
  resolve: (r: RespReply) => void;
  reject: (e: Error) => void;
}

export class RespClient {
  readonly #sock: Socket;
  readonly #parser = new RespReplyParser();
  readonly #pending: Pending[] = [];
  #failure: Error | null = null;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    sock.on('error', (err) => this.#fail(err));
    sock.on('close', () => this.#fail(new Error('RESP connection closed')));
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RespClient> {
    const sock = connect({ host, port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return new RespClient(sock);
  }

  /** Sends one command; resolves with its reply (error replies reject). */
  command(args: readonly (string | Buffer)[]): Promise<RespReply> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise<RespReply>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      const parts = encodeCommand(args);
      this.#sock.cork();
      for (const p of parts) this.#sock.write(p);
      this.#sock.uncork();
    });
  }

  async set(key: string, value: Buffer): Promise<void> {
    const r = await this.command(['SET', key, value]);
    if (r.kind !== 'simple' || r.text !== 'OK') throw new Error(`SET ${key}: unexpected reply ${r.kind}`);
  }

  /** GET: the value's length (the bytes are received and parsed, then dropped), or -1 when absent. */
  async getLength(key: string): Promise<number> {
    const r = await this.command(['GET', key]);
    if (r.kind !== 'bulk') throw new Error(`GET ${key}: unexpected reply ${r.kind}`);
    if (r.value === null) return -1;
    return Buffer.isBuffer(r.value) ? r.value.length : r.value.reduce((n, b) => n + b.length, 0);
  }

  close(): void {
    this.#sock.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#parser.push(chunk);
    try {
      for (;;) {
        const r = this.#parser.next();
        if (r === null) return;
        const p = this.#pending.shift();
        if (p === undefined) return this.#fail(new Error('RESP reply with no command pending'));
        if (r.kind === 'error') p.reject(new Error(`RESP error: ${r.text}`));
        else p.resolve(r);
      }
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #fail(err: Error): void {
    if (this.#failure === null) this.#failure = err;
    for (const p of this.#pending.splice(0)) p.reject(err);
  }
}
