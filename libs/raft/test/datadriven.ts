/**
 * A small reader/writer for data-driven test files (the shape of cockroachdb/datadriven, which
 * etcd's raft uses): blocks of
 *
 *   # optional comment lines
 *   command arg key=value key=(a b c)
 *   ----
 *   expected output (no blank lines; "ok" when empty)
 *
 * separated by blank lines. REWRITE=1 rewrites the expected outputs from the actual ones.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface Command {
  readonly name: string;
  /** Positional arguments (tokens without `=`). */
  readonly args: readonly string[];
  /** key=value and key=(v1 v2 ...) arguments. */
  readonly kv: ReadonlyMap<string, readonly string[]>;
  readonly line: number;
  readonly text: string;
}

export interface Block {
  readonly comments: readonly string[];
  readonly command: Command;
  readonly expected: string;
}

function parseCommand(text: string, line: number): Command {
  const tokens: string[] = [];
  const re = /(\S+=\([^)]*\)|\S+)/g;
  for (const m of text.matchAll(re)) tokens.push(m[0]);
  const [name, ...rest] = tokens;
  if (name === undefined) throw new Error(`line ${line}: empty command`);
  const args: string[] = [];
  const kv = new Map<string, string[]>();
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq < 0) {
      args.push(t);
      continue;
    }
    const k = t.slice(0, eq);
    let v = t.slice(eq + 1);
    if (v.startsWith('(') && v.endsWith(')')) v = v.slice(1, -1);
    kv.set(k, v.split(/[\s,]+/).filter((x) => x.length > 0));
  }
  return { name, args, kv, line, text };
}

export function parseFile(path: string): { blocks: Block[]; trailing: string[] } {
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '') {
      i++;
      continue;
    }
    if (l.startsWith('#')) {
      comments.push(l);
      i++;
      continue;
    }
    const command = parseCommand(l, i + 1);
    i++;
    if (lines[i] !== '----') throw new Error(`${path}:${i + 1}: expected ---- after command`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    blocks.push({ comments, command, expected: out.join('\n') });
    comments = [];
  }
  return { blocks, trailing: comments };
}

export function writeFile(path: string, blocks: readonly Block[], outputs: readonly string[], trailing: readonly string[]): void {
  const parts: string[] = [];
  blocks.forEach((b, k) => {
    const lines = [...b.comments, b.command.text, '----', outputs[k] ?? ''];
    parts.push(lines.join('\n'));
  });
  if (trailing.length > 0) parts.push(trailing.join('\n'));
  writeFileSync(path, parts.join('\n\n') + '\n');
}

export function intArg(c: Command, i: number): number {
  const v = c.args[i];
  if (v === undefined || !/^\d+$/.test(v)) throw new Error(`line ${c.line}: argument ${i} of ${c.name} must be an integer`);
  return Number(v);
}

export function kvInts(c: Command, key: string): number[] | undefined {
  return c.kv.get(key)?.map((v) => {
    if (!/^\d+$/.test(v)) throw new Error(`line ${c.line}: ${key} must hold integers`);
    return Number(v);
  });
}
