import type { Server } from 'node:net';
import type { Logger } from '@tw/observability';
import { gatewayAppErrors } from './errors.js';

/** A front-end's connection as the listener sees it: idle between requests, destroyable. */
export interface FrontendConnection {
  readonly idle: boolean;
  destroy(): void;
}

export interface ListeningFrontend {
  /** `host:port` with the bound port. */
  readonly address: string;
  readonly port: number;
  /** Stops accepting; open connections get `graceMs` to finish their request, then are destroyed. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Listens with a node:net server whose connections the caller tracks in `connections`, and
 * closes it gracefully: the same lifecycle for the RESP and lm:// front-ends.
 */
export async function listenFrontend(
  name: string,
  server: Server,
  connections: ReadonlySet<FrontendConnection>,
  o: { readonly host: string; readonly port: number; readonly logger: Logger },
): Promise<ListeningFrontend> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(gatewayAppErrors.create('TW_GATEWAY_APP_START', `${name}: cannot listen on ${o.host}:${o.port}: ${err.message}`, { cause: err })));
    server.listen(o.port, o.host, () => resolve());
  });
  server.on('error', (err) => o.logger.error({ err }, `${name} server error`));
  const port = (server.address() as { port: number }).port;
  return {
    address: `${o.host}:${port}`,
    port,
    async close(graceMs = 0) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      const deadline = Date.now() + graceMs;
      while ([...connections].some((c) => !c.idle) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of connections) c.destroy();
      await closed;
    },
  };
}
