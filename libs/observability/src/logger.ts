import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Structured JSON logs (one object per line) on stdout, or on `destination`. Every line carries
 * the process role (`storage-node`, `coordinator`, ...) and its id, so logs of a cluster can be
 * merged and filtered.
 */
export function createLogger(options: { role: string; id?: string; level?: LogLevel; destination?: DestinationStream }): Logger {
  const base = { role: options.role, ...(options.id === undefined ? {} : { id: options.id }), pid: process.pid };
  return pino({ level: options.level ?? 'info', base, timestamp: pino.stdTimeFunctions.isoTime }, options.destination ?? pino.destination({ dest: 1, sync: false }));
}
