import { configErrors } from './errors.js';

/** A flag of a binary's command line. */
export interface FlagSpec {
  readonly name: string;
  readonly description: string;
  /** Takes a value (`--config FILE`); otherwise a boolean switch. */
  readonly value?: string;
}

export interface ParsedArgs {
  readonly flags: ReadonlyMap<string, string | true>;
  readonly positionals: readonly string[];
}

/**
 * Parses `--flag`, `--flag VALUE` and `--flag=VALUE`. Unknown flags and missing values are
 * TW_CLI_USAGE errors. `--help` / `-h` is always known.
 */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      flags.set('help', true);
      continue;
    }
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = byName.get(name);
    if (spec === undefined) throw configErrors.create('TW_CLI_USAGE', `unknown flag --${name}`);
    if (spec.value === undefined) {
      if (eq !== -1) throw configErrors.create('TW_CLI_USAGE', `flag --${name} takes no value`);
      flags.set(name, true);
    } else {
      const value = eq !== -1 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || (eq === -1 && value.startsWith('--'))) throw configErrors.create('TW_CLI_USAGE', `flag --${name} needs a value (${spec.value})`);
      flags.set(name, value);
    }
  }
  return { flags, positionals };
}

/** The `--help` text: usage line, summary, flags. */
export function helpText(usage: string, summary: string, specs: readonly FlagSpec[]): string {
  const rows = [...specs, { name: 'help', description: 'print this help and exit' }].map((s) => {
    const left = `  --${s.name}${'value' in s && s.value !== undefined ? ` ${s.value}` : ''}`;
    return [left, s.description] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [`usage: ${usage}`, '', summary, '', 'flags:', ...rows.map(([l, d]) => `${l.padEnd(width)}${d}`), ''].join('\n');
}
