import { readFileSync } from 'node:fs';
import { type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { configErrors } from './errors.js';

/** One problem with one field, in words an operator can act on. */
export interface ConfigProblem {
  /** JSON-pointer-like path, dots instead of slashes: `listen.port`, `devices.0.path`. */
  readonly field: string;
  readonly message: string;
}

/**
 * Validates a config object against a TypeBox schema: fills defaults, refuses unknown fields
 * (objects in our schemas set additionalProperties: false) and names every bad field.
 * Throws TW_CONFIG_INVALID with `details.problems`.
 */
export function parseConfig<S extends TSchema>(schema: S, input: unknown, source = 'config'): Static<S> {
  const withDefaults = Value.Default(schema, Value.Clone(input ?? {}));
  const check = TypeCompiler.Compile(schema);
  if (check.Check(withDefaults)) return withDefaults as Static<S>;
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of check.Errors(withDefaults)) {
    const field = e.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    // One message per field: TypeBox reports each failed alternative of a union separately.
    if (seen.has(field)) continue;
    seen.add(field);
    const options = literalOptions(e.schema);
    const message = options === undefined ? e.message : `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}`;
    problems.push({ field, message: `${message}${e.value === undefined ? '' : ` (got ${preview(e.value)})`}` });
  }
  const list = problems.map((p) => `  ${p.field}: ${p.message}`).join('\n');
  throw configErrors.create('TW_CONFIG_INVALID', `${source} is invalid:\n${list}`, { details: { problems } });
}

/** Reads a JSON config file and validates it (see parseConfig). */
export function loadConfigFile<S extends TSchema>(schema: S, path: string): Static<S> {
  return parseConfig(schema, readConfigFile(path), `config file ${path}`);
}

/** Reads and parses a JSON config file without validating it (to merge command-line overrides first). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configErrors.create('TW_CONFIG_UNREADABLE', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw configErrors.create('TW_CONFIG_UNREADABLE', `config file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw configErrors.create('TW_CONFIG_INVALID', `config file ${path} must hold a JSON object`, { details: { path, problems: [{ field: '(root)', message: 'must be an object' }] } });
  }
  return json as Record<string, unknown>;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The allowed values of a union of literals (`"always" | "group" | "never"`), else undefined. */
function literalOptions(schema: unknown): unknown[] | undefined {
  const anyOf = (schema as { anyOf?: unknown[] }).anyOf;
  if (!Array.isArray(anyOf) || anyOf.length === 0) return undefined;
  const values = anyOf.map((s) => (s as { const?: unknown }).const);
  return values.every((v) => v !== undefined) ? values : undefined;
}
