import { isTwError } from '@tw/errors';

/** Codes that mean "the command line or config is wrong": exit status 2. */
const USAGE_CODES = ['TW_CLI_USAGE', 'TW_CONFIG_INVALID', 'TW_CONFIG_UNREADABLE'];

/** Resolves at the first SIGTERM or SIGINT (and stops listening for them). */
export function waitForStopSignal(log?: { info(obj: object, msg: string): void }): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log?.info({ signal }, 'signal received');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * Runs a binary's main and turns its outcome into an exit status: its own on success; 2 for a
 * bad command line or config (plus `extraUsageCodes`), 1 for any other coded error, with the code,
 * the message and its cause on stderr; 1 and the stack for anything uncoded (a bug).
 */
export function runCli(name: string, main: (argv: string[]) => Promise<number>, extraUsageCodes: readonly string[] = []): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (isTwError(err)) {
        process.stderr.write(`${name}: ${err.code}: ${err.message}\n`);
        if (err.cause instanceof Error && !isTwError(err.cause) && !err.message.includes(err.cause.message)) process.stderr.write(`  cause: ${err.cause.message}\n`);
        else if (isTwError(err.cause)) process.stderr.write(`  cause: ${err.cause.code}: ${err.cause.message}\n`);
        process.exitCode = USAGE_CODES.includes(err.code) || extraUsageCodes.includes(err.code) ? 2 : 1;
      } else {
        process.stderr.write(`${name}: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
