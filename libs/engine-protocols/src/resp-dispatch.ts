import { isTwError } from '@tw/errors';
import { RESP_ERROR_ARG_BYTES_MAX } from './limits.js';
import { parseRedisInteger } from './redis-integer.js';
import { RespSession, type RespBackend, type RespSetOptions } from './resp-backend.js';
import {
  RESP_EMPTY_ARRAY,
  RESP_NOAUTH,
  RESP_NOT_INTEGER,
  RESP_NULL_BULK,
  RESP_OK,
  RESP_PONG,
  RESP_SYNTAX_ERROR,
  RESP_WRONGPASS,
  encodeArrayHeader,
  encodeBulkString,
  encodeError,
  encodeInteger,
} from './resp-reply.js';
import type { RespCommand } from './resp-request-parser.js';

/** The Redis version the front-end answers as (HELLO, INFO): the one its replies were checked against. */
export const RESP_COMPAT_REDIS_VERSION = '7.0.15';

export interface RespDispatchOptions {
  /** Aborts the backend call (connection closed, shutdown). */
  readonly signal?: AbortSignal;
  /** The connection's CLIENT/HELLO state; a fresh one (id 0) when omitted. */
  readonly session?: RespSession;
}

export interface RespDispatchResult {
  /** Reply bytes as pieces, in order (empty when Redis closes without a reply). */
  readonly reply: Buffer[];
  /** Close the connection once `reply` is written (QUIT; Redis's cross-protocol guard). */
  readonly close: boolean;
}

type Handler = (args: RespCommand, ctx: Context) => Promise<Buffer[]> | Buffer[];

interface CommandSpec {
  /** Redis's `fullname` (lower case; `parent|sub` for subcommands), used in arity errors. */
  readonly fullname: string;
  /** Redis arity: n exact, -n at least n (the name counts). */
  readonly arity: number;
  /** Allowed before authentication (Redis's NO_AUTH flag). */
  readonly noAuth?: boolean;
  readonly handler: Handler;
  readonly subcommands?: ReadonlyMap<string, CommandSpec>;
}

interface Context {
  readonly backend: RespBackend;
  readonly signal: AbortSignal;
  readonly session: RespSession;
}

const NEVER = new AbortController().signal;
const LLONG_MAX = 9223372036854775807n;
const INT_MAX = 2147483647n;
const INT_MIN = -2147483648n;

/**
 * Executes one command the way redis-server 7 does, for the subset LMCache and the usual tools
 * use, and returns Redis's exact reply bytes. Order of checks as in Redis's processCommand:
 * cross-protocol guard (POST / Host:, compared as C strings), unknown command / subcommand, arity, NOAUTH, then the
 * command's own checks. QUIT answers +OK and closes (any arguments, also before AUTH). Backend failures that are TwErrors become `-ERR <code> <message>` and the
 * connection stays; TW_RESP_ABORTED and anything not a TwError propagate.
 */
export async function dispatch(command: RespCommand, backend: RespBackend, options: RespDispatchOptions = {}): Promise<RespDispatchResult> {
  const name = command[0];
  if (name === undefined) return { reply: [], close: false };
  const cname = asciiLower(cstr(name));
  if (cname === 'post' || cname === 'host:') return { reply: [], close: true };

  const base = COMMANDS.get(asciiLower(name.toString('latin1')));
  let spec: CommandSpec | undefined = base;
  if (base?.subcommands !== undefined && command.length >= 2) {
    spec = base.subcommands.get(asciiLower(command[1]!.toString('latin1')));
    if (spec === undefined) {
      const sub = clip(cstr(command[1]!), RESP_ERROR_ARG_BYTES_MAX);
      return reply([encodeError(`unknown subcommand '${sub}'. Try ${asciiUpper(cstr(name))} HELP.`)]);
    }
  }
  if (spec === undefined) return reply([encodeError(unknownCommandMessage(command))]);
  if ((spec.arity > 0 && spec.arity !== command.length) || command.length < -spec.arity) {
    return reply([arityError(spec.fullname)]);
  }
  if (spec.noAuth !== true && backend.authRequired()) return reply([RESP_NOAUTH]);

  if (spec.fullname === 'quit') return { reply: [RESP_OK], close: true };
  const ctx: Context = { backend, signal: options.signal ?? NEVER, session: options.session ?? new RespSession(0) };
  try {
    return reply(await spec.handler(command, ctx));
  } catch (err) {
    if (isTwError(err) && err.code !== 'TW_RESP_ABORTED') {
      return reply([encodeError(`${err.code} ${err.message}`)]);
    }
    throw err;
  }
}

function reply(pieces: Buffer[]): RespDispatchResult {
  return { reply: pieces, close: false };
}

/** Redis 7's wording: `unknown command '<name>', with args beginning with: '<a>' '<b>' `. */
function unknownCommandMessage(command: RespCommand): string {
  let args = '';
  for (let i = 1; i < command.length && args.length < RESP_ERROR_ARG_BYTES_MAX; i++) {
    args += `'${clip(cstr(command[i]!), RESP_ERROR_ARG_BYTES_MAX - args.length)}' `;
  }
  return `unknown command '${clip(cstr(command[0]!), RESP_ERROR_ARG_BYTES_MAX)}', with args beginning with: ${args}`;
}

function arityError(fullname: string): Buffer {
  return encodeError(`wrong number of arguments for '${fullname}' command`);
}

// ---- commands ----

async function authCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  if (args.length > 3) return [RESP_SYNTAX_ERROR];
  const username = args.length === 3 ? args[1]! : null;
  const password = args[args.length - 1]!;
  const outcome = await ctx.backend.auth(username, password, ctx.signal);
  if (outcome === 'ok') return [RESP_OK];
  if (outcome === 'no-password') {
    if (username === null) {
      return [encodeError('AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?')];
    }
    return [RESP_OK];
  }
  return [RESP_WRONGPASS];
}

async function helloCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  let version = 0n;
  if (args.length >= 2) {
    const v = parseRedisInteger(args[1]!);
    if (v === null) return [encodeError('Protocol version is not an integer or out of range')];
    if (v < 2n || v > 3n) return [encodeError('-NOPROTO unsupported protocol version')];
    version = v;
  }
  let username: Buffer | null = null;
  let password: Buffer | null = null;
  let clientName: Buffer | null = null;
  for (let j = 2; j < args.length; j++) {
    const more = args.length - 1 - j;
    const opt = asciiLower(cstr(args[j]!));
    if (opt === 'auth' && more >= 2) {
      username = args[j + 1]!;
      password = args[j + 2]!;
      j += 2;
    } else if (opt === 'setname' && more >= 1) {
      clientName = args[j + 1]!;
      j += 1;
    } else {
      return [encodeError(`Syntax error in HELLO option '${cstr(args[j]!)}'`)];
    }
  }
  if (username !== null && password !== null) {
    const outcome = await ctx.backend.auth(username, password, ctx.signal);
    if (outcome === 'wrongpass') return [RESP_WRONGPASS];
  }
  if (ctx.backend.authRequired()) {
    return [
      encodeError(
        '-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
      ),
    ];
  }
  // RESP3 is not spoken: refused where Redis would switch, after every check Redis makes first.
  if (version === 3n) return [encodeError('-NOPROTO unsupported protocol version')];
  if (clientName !== null) {
    const err = setClientName(ctx.session, clientName);
    if (err !== null) return [err];
  }
  const out: Buffer[] = [encodeArrayHeader(14)];
  encodeBulkString('server', out);
  encodeBulkString('redis', out);
  encodeBulkString('version', out);
  encodeBulkString(RESP_COMPAT_REDIS_VERSION, out);
  encodeBulkString('proto', out);
  out.push(encodeInteger(2));
  encodeBulkString('id', out);
  out.push(encodeInteger(ctx.session.clientId));
  encodeBulkString('mode', out);
  encodeBulkString('standalone', out);
  encodeBulkString('role', out);
  encodeBulkString('master', out);
  encodeBulkString('modules', out);
  out.push(RESP_EMPTY_ARRAY);
  return out;
}

function pingCommand(args: RespCommand): Buffer[] {
  if (args.length > 2) return [arityError('ping')];
  return args.length === 1 ? [RESP_PONG] : encodeBulkString(args[1]!);
}

function echoCommand(args: RespCommand): Buffer[] {
  return encodeBulkString(args[1]!);
}

function selectCommand(args: RespCommand): Buffer[] {
  const id = parseRedisInteger(args[1]!);
  if (id === null) return [RESP_NOT_INTEGER];
  if (id > INT_MAX || id < INT_MIN) return [encodeError('value is out of range, value must between -2147483648 and 2147483647')];
  // One database: Redis's answer for an index past `databases`.
  return id === 0n ? [RESP_OK] : [encodeError('DB index is out of range')];
}

async function getCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  return encodeBulkString(await ctx.backend.get(args[1]!, ctx.signal));
}

const FLAG_NX = 1;
const FLAG_XX = 2;
const FLAG_GET = 4;
const FLAG_KEEPTTL = 8;
const FLAG_EX = 16;
const FLAG_PX = 32;
const FLAG_EXAT = 64;
const FLAG_PXAT = 128;
const EXPIRE_FLAGS = FLAG_EX | FLAG_PX | FLAG_EXAT | FLAG_PXAT;

/** Redis's parseExtendedStringArgumentsOrReply for SET, then getExpireMillisecondsOrReply. */
async function setCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  let flags = 0;
  let expire: Buffer | null = null;
  for (let j = 3; j < args.length; j++) {
    const opt = asciiLower(cstr(args[j]!));
    const hasNext = j < args.length - 1;
    if (opt === 'nx' && !(flags & FLAG_XX)) flags |= FLAG_NX;
    else if (opt === 'xx' && !(flags & FLAG_NX)) flags |= FLAG_XX;
    else if (opt === 'get') flags |= FLAG_GET;
    else if (opt === 'keepttl' && !(flags & EXPIRE_FLAGS)) flags |= FLAG_KEEPTTL;
    else if (opt === 'ex' && !(flags & (FLAG_KEEPTTL | FLAG_EXAT | FLAG_PX | FLAG_PXAT)) && hasNext) {
      flags |= FLAG_EX;
      expire = args[++j]!;
    } else if (opt === 'px' && !(flags & (FLAG_KEEPTTL | FLAG_EX | FLAG_EXAT | FLAG_PXAT)) && hasNext) {
      flags |= FLAG_PX;
      expire = args[++j]!;
    } else if (opt === 'exat' && !(flags & (FLAG_KEEPTTL | FLAG_EX | FLAG_PX | FLAG_PXAT)) && hasNext) {
      flags |= FLAG_EXAT;
      expire = args[++j]!;
    } else if (opt === 'pxat' && !(flags & (FLAG_KEEPTTL | FLAG_EX | FLAG_EXAT | FLAG_PX)) && hasNext) {
      flags |= FLAG_PXAT;
      expire = args[++j]!;
    } else {
      return [RESP_SYNTAX_ERROR];
    }
  }
  let expireAtMs: number | null = null;
  if (expire !== null) {
    const v = parseRedisInteger(expire);
    if (v === null) return [RESP_NOT_INTEGER];
    const seconds = (flags & (FLAG_EX | FLAG_EXAT)) !== 0;
    if (v <= 0n || (seconds && v > LLONG_MAX / 1000n)) return [invalidExpire()];
    let ms = seconds ? v * 1000n : v;
    if (flags & (FLAG_EX | FLAG_PX)) ms += BigInt(Math.trunc(ctx.backend.nowMs()));
    // Redis's int64 addition wraps negative here and it refuses the result.
    if (ms > LLONG_MAX) return [invalidExpire()];
    expireAtMs = Number(ms);
  }
  const options: RespSetOptions = {
    condition: flags & FLAG_NX ? 'nx' : flags & FLAG_XX ? 'xx' : 'always',
    returnPrevious: (flags & FLAG_GET) !== 0,
    expireAtMs,
    keepTtl: (flags & FLAG_KEEPTTL) !== 0,
  };
  const outcome = await ctx.backend.set(args[1]!, args[2]!, options, ctx.signal);
  if (options.returnPrevious) return encodeBulkString(outcome.previous);
  return [outcome.written ? RESP_OK : RESP_NULL_BULK];
}

function invalidExpire(): Buffer {
  return encodeError("invalid expire time in 'set' command");
}

async function existsCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  return [encodeInteger(await ctx.backend.exists(args.slice(1), ctx.signal))];
}

async function delCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  return [encodeInteger(await ctx.backend.del(args.slice(1), ctx.signal))];
}

async function mgetCommand(args: RespCommand, ctx: Context): Promise<Buffer[]> {
  const values = await ctx.backend.mget(args.slice(1), ctx.signal);
  const out: Buffer[] = [encodeArrayHeader(values.length)];
  for (const v of values) encodeBulkString(v, out);
  return out;
}

const INFO_SECTIONS: ReadonlyMap<string, string> = new Map([
  ['server', `# Server\r\nredis_version:${RESP_COMPAT_REDIS_VERSION}\r\nredis_mode:standalone\r\narch_bits:64\r\n`],
  ['replication', '# Replication\r\nrole:master\r\nconnected_slaves:0\r\n'],
  ['keyspace', '# Keyspace\r\n'],
]);

function infoCommand(args: RespCommand): Buffer[] {
  const wanted = args.slice(1).map((a) => asciiLower(a.toString('latin1')));
  const all = wanted.length === 0 || wanted.some((w) => w === 'all' || w === 'everything' || w === 'default');
  const parts: string[] = [];
  for (const [name, text] of INFO_SECTIONS) if (all || wanted.includes(name)) parts.push(text);
  return encodeBulkString(parts.join('\r\n'));
}

function setClientName(session: RespSession, name: Buffer): Buffer | null {
  if (!printable(name)) return encodeError('Client names cannot contain spaces, newlines or special characters.');
  session.name = name.length === 0 ? null : Buffer.from(name);
  return null;
}

function clientSetName(args: RespCommand, ctx: Context): Buffer[] {
  return [setClientName(ctx.session, args[2]!) ?? RESP_OK];
}

function clientGetName(_args: RespCommand, ctx: Context): Buffer[] {
  return encodeBulkString(ctx.session.name);
}

function clientId(_args: RespCommand, ctx: Context): Buffer[] {
  return [encodeInteger(ctx.session.clientId)];
}

/** CLIENT SETINFO (Redis 7.2; redis-py sends it at connect and tolerates an error). */
function clientSetInfo(args: RespCommand, ctx: Context): Buffer[] {
  const attr = cstr(args[2]!);
  const key = asciiLower(attr);
  if (key !== 'lib-name' && key !== 'lib-ver') return [encodeError(`Unrecognized option '${attr}'`)];
  const value = args[3]!;
  if (!printable(value)) return [encodeError(`${attr} cannot contain spaces, newlines or special characters.`)];
  const stored = value.length === 0 ? null : Buffer.from(value);
  if (key === 'lib-name') ctx.session.libName = stored;
  else ctx.session.libVersion = stored;
  return [RESP_OK];
}

/** The configuration a client may read at connect (redis-benchmark reads save and appendonly). */
const CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['save', ''],
  ['appendonly', 'no'],
  ['databases', '1'],
];

function configGet(args: RespCommand): Buffer[] {
  const found: [string, string][] = [];
  const seen = new Set<string>();
  for (const arg of args.slice(2)) {
    const pattern = cstr(arg);
    if (!/[[*?]/.test(pattern)) {
      // No glob characters: Redis answers with the name as the client spelled it.
      const entry = CONFIG.find(([n]) => n === asciiLower(pattern));
      if (entry !== undefined && !seen.has(entry[0])) {
        seen.add(entry[0]);
        found.push([pattern, entry[1]]);
      }
      continue;
    }
    for (const [n, v] of CONFIG) {
      if (!seen.has(n) && globMatch(asciiLower(pattern), n)) {
        seen.add(n);
        found.push([n, v]);
      }
    }
  }
  const out: Buffer[] = [encodeArrayHeader(found.length * 2)];
  for (const [n, v] of found) {
    encodeBulkString(n, out);
    encodeBulkString(v, out);
  }
  return out;
}

/** COMMAND and COMMAND DOCS: no command table is published (clients fall back to their own). */
function commandEmpty(): Buffer[] {
  return [RESP_EMPTY_ARRAY];
}

function table(specs: CommandSpec[]): ReadonlyMap<string, CommandSpec> {
  return new Map(specs.map((s) => [s.fullname.split('|').pop()!, s]));
}

const COMMANDS: ReadonlyMap<string, CommandSpec> = table([
  { fullname: 'auth', arity: -2, noAuth: true, handler: authCommand },
  { fullname: 'hello', arity: -1, noAuth: true, handler: helloCommand },
  { fullname: 'quit', arity: -1, noAuth: true, handler: () => [RESP_OK] },
  { fullname: 'ping', arity: -1, handler: pingCommand },
  { fullname: 'echo', arity: 2, handler: echoCommand },
  { fullname: 'select', arity: 2, handler: selectCommand },
  { fullname: 'get', arity: 2, handler: getCommand },
  { fullname: 'set', arity: -3, handler: setCommand },
  { fullname: 'exists', arity: -2, handler: existsCommand },
  { fullname: 'del', arity: -2, handler: delCommand },
  { fullname: 'mget', arity: -2, handler: mgetCommand },
  { fullname: 'info', arity: -1, handler: infoCommand },
  {
    fullname: 'client',
    arity: -2,
    handler: () => [arityError('client')],
    subcommands: table([
      { fullname: 'client|setname', arity: 3, handler: clientSetName },
      { fullname: 'client|getname', arity: 2, handler: clientGetName },
      { fullname: 'client|id', arity: 2, handler: clientId },
      { fullname: 'client|setinfo', arity: 4, handler: clientSetInfo },
    ]),
  },
  {
    fullname: 'config',
    arity: -2,
    handler: () => [arityError('config')],
    subcommands: table([{ fullname: 'config|get', arity: -3, handler: configGet }]),
  },
  {
    fullname: 'command',
    arity: -1,
    handler: commandEmpty,
    subcommands: table([
      { fullname: 'command|docs', arity: -2, handler: commandEmpty },
      { fullname: 'command|count', arity: 2, handler: () => [encodeInteger(respCommandNames().length)] },
    ]),
  },
]);

/** The names of the commands the front-end executes (lower case, subcommands as `parent|sub`). */
export function respCommandNames(): string[] {
  const names: string[] = [];
  for (const spec of COMMANDS.values()) {
    names.push(spec.fullname);
    if (spec.subcommands !== undefined) for (const sub of spec.subcommands.values()) names.push(sub.fullname);
  }
  return names;
}

// ---- byte-string helpers: one char per byte (latin1), as C's %s sees them ----

/** The bytes up to the first NUL, as C's `%s` and strcasecmp see an argument. */
function cstr(b: Buffer): string {
  const nul = b.indexOf(0);
  return (nul === -1 ? b : b.subarray(0, nul)).toString('latin1');
}

function clip(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) : s;
}

/** ASCII-only case folding (C's tolower in the C locale): bytes over 0x7f are left alone. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function asciiUpper(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/** Redis's rule for client names and lib attributes: bytes '!'..'~' only. */
function printable(b: Buffer): boolean {
  for (const c of b) if (c < 0x21 || c > 0x7e) return false;
  return true;
}

/** Glob with `*`, `?`, `[...]` and `\` escapes (Redis's stringmatch), on lower-cased input. */
function globMatch(pattern: string, text: string): boolean {
  const memo = new Map<number, boolean>();
  const go = (p: number, t: number): boolean => {
    const key = p * 65536 + t;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let result: boolean;
    if (p === pattern.length) result = t === text.length;
    else {
      const c = pattern[p]!;
      if (c === '*') result = go(p + 1, t) || (t < text.length && go(p, t + 1));
      else if (t === text.length) result = false;
      else if (c === '?') result = go(p + 1, t + 1);
      else if (c === '[') {
        const close = pattern.indexOf(']', p + 1);
        if (close === -1) result = text[t] === '[' && go(p + 1, t + 1);
        else {
          let body = pattern.slice(p + 1, close);
          const negate = body.startsWith('^');
          if (negate) body = body.slice(1);
          let inSet = false;
          for (let i = 0; i < body.length; i++) {
            if (body[i + 1] === '-' && i + 2 < body.length) {
              if (text[t]! >= body[i]! && text[t]! <= body[i + 2]!) inSet = true;
              i += 2;
            } else if (body[i] === text[t]) inSet = true;
          }
          result = inSet !== negate && go(close + 1, t + 1);
        }
      } else if (c === '\\' && p + 1 < pattern.length) result = pattern[p + 1] === text[t] && go(p + 2, t + 1);
      else result = c === text[t] && go(p + 1, t + 1);
    }
    memo.set(key, result);
    return result;
  };
  return go(0, 0);
}
