import { RespRequestParser, RespSession, dispatch, respErrorReply, type RespBackend, type RespCommand } from '../src/index.js';

export interface Served {
  /** Every reply byte, in order, as a client reads them. */
  readonly out: Buffer;
  /** Whether the server closed the connection (protocol error, QUIT, cross-protocol guard). */
  readonly closed: boolean;
  readonly commands: RespCommand[];
  /** Code of the parser error that closed the connection, if any. */
  readonly errorCode: string | null;
}

/** Runs a connection's input through parser and dispatcher the way the gateway will. */
export async function serve(chunks: readonly Buffer[], backend: RespBackend, session = new RespSession(7)): Promise<Served> {
  const parser = new RespRequestParser({ authRequired: backend.authRequired() });
  const out: Buffer[] = [];
  const commands: RespCommand[] = [];
  for (const chunk of chunks) {
    parser.push(chunk);
    for (;;) {
      let command: RespCommand | null;
      try {
        command = parser.next();
      } catch (err) {
        const reply = respErrorReply(err);
        if (reply !== null) out.push(reply);
        return { out: Buffer.concat(out), closed: true, commands, errorCode: (err as { code?: string }).code ?? 'not-coded' };
      }
      if (command === null) break;
      commands.push(command);
      const result = await dispatch(command, backend, { session });
      out.push(...result.reply);
      parser.authRequired = backend.authRequired();
      if (result.close) return { out: Buffer.concat(out), closed: true, commands, errorCode: null };
    }
  }
  return { out: Buffer.concat(out), closed: false, commands, errorCode: null };
}
