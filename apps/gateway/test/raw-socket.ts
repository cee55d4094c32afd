import { type Socket, connect } from 'node:net';

/** A raw TCP client for protocol tests: write bytes, read exactly n bytes (or until the server closes). */
export class RawSocket {
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  closed = false;
  #wake: (() => void) | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.#chunks.push(c);
      this.#buffered += c.length;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(address: string): Promise<RawSocket> {
    const i = address.lastIndexOf(':');
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawSocket(socket);
  }

  write(b: Buffer | string): void {
    this.socket.write(b);
  }

  /** Reads exactly n bytes; rejects after timeoutMs or when the server closed first. */
  async read(n: number, timeoutMs = 20_000): Promise<Buffer> {
    const t0 = Date.now();
    while (this.#buffered < n) {
      if (this.closed) throw new Error(`closed after ${this.#buffered} of ${n} bytes: ${JSON.stringify(Buffer.concat(this.#chunks).toString('latin1').slice(0, 200))}`);
      const left = timeoutMs - (Date.now() - t0);
      if (left <= 0) throw new Error(`timed out with ${this.#buffered} of ${n} bytes: ${JSON.stringify(Buffer.concat(this.#chunks).toString('latin1').slice(0, 200))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = null;
    }
    const all = Buffer.concat(this.#chunks);
    this.#chunks.length = 0;
    this.#chunks.push(all.subarray(n));
    this.#buffered = all.length - n;
    return all.subarray(0, n);
  }

  /** Reads one line up to and with its CRLF. */
  async readLine(timeoutMs = 20_000): Promise<string> {
    let line = '';
    while (!line.endsWith('\r\n')) line += (await this.read(1, timeoutMs)).toString('latin1');
    return line;
  }

  /** Waits for the server to close; returns what it sent before. */
  async readToClose(timeoutMs = 20_000): Promise<Buffer> {
    const t0 = Date.now();
    while (!this.closed) {
      if (Date.now() - t0 > timeoutMs) throw new Error('server did not close the connection');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = null;
    }
    const all = Buffer.concat(this.#chunks);
    this.#chunks.length = 0;
    this.#buffered = 0;
    return all;
  }

  close(): void {
    this.socket.destroy();
  }
}

export function respCommand(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
