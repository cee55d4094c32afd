import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, test } from 'vitest';
import { helpText, loadConfigFile, parseArgs, parseConfig } from '../src/index.js';

const Schema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1 }),
    listen: Type.Object({ host: Type.String({ default: '127.0.0.1' }), port: Type.Integer({ minimum: 0, maximum: 65535, default: 7400 }) }, { additionalProperties: false, default: {} }),
    fsync: Type.Union([Type.Literal('always'), Type.Literal('group'), Type.Literal('never')], { default: 'group' }),
  },
  { additionalProperties: false },
);

describe('parseConfig', () => {
  test('fills defaults', () => {
    expect(parseConfig(Schema, { dataDir: '/d' })).toEqual({ dataDir: '/d', listen: { host: '127.0.0.1', port: 7400 }, fsync: 'group' });
  });
  test('names every bad field', () => {
    try {
      parseConfig(Schema, { dataDir: '', listen: { port: 70000 }, fsync: 'sometimes', extra: 1 });
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'TW_CONFIG_INVALID' });
      const fields = ((err as { details: { problems: { field: string }[] } }).details.problems).map((p) => p.field);
      expect(fields).toEqual(expect.arrayContaining(['dataDir', 'listen.port', 'fsync', 'extra']));
      expect((err as Error).message).toContain('listen.port');
      expect((err as Error).message).toContain('fsync: must be one of "always", "group", "never" (got "sometimes")');
    }
  });
  test('does not modify its input', () => {
    const input = { dataDir: '/d' };
    parseConfig(Schema, input);
    expect(input).toEqual({ dataDir: '/d' });
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test('missing file, bad JSON, good file', () => {
    expect(() => loadConfigFile(Schema, join(dir, 'nope.json'))).toThrow(expect.objectContaining({ code: 'TW_CONFIG_UNREADABLE' }));
    writeFileSync(join(dir, 'bad.json'), '{"dataDir": ');
    expect(() => loadConfigFile(Schema, join(dir, 'bad.json'))).toThrow(expect.objectContaining({ code: 'TW_CONFIG_UNREADABLE' }));
    writeFileSync(join(dir, 'good.json'), '{"dataDir": "/x", "fsync": "always"}');
    expect(loadConfigFile(Schema, join(dir, 'good.json')).fsync).toBe('always');
  });
});

describe('parseArgs', () => {
  const specs = [{ name: 'config', value: 'FILE', description: 'config file' }, { name: 'rebuild-index', description: 'rebuild' }];
  test('flags, values, help, positionals', () => {
    const a = parseArgs(['--config', 'a.json', '--rebuild-index', 'x'], specs);
    expect(a.flags.get('config')).toBe('a.json');
    expect(a.flags.get('rebuild-index')).toBe(true);
    expect(a.positionals).toEqual(['x']);
    expect(parseArgs(['--config=b.json'], specs).flags.get('config')).toBe('b.json');
    expect(parseArgs(['-h'], specs).flags.get('help')).toBe(true);
  });
  test('usage errors', () => {
    expect(() => parseArgs(['--nope'], specs)).toThrow(expect.objectContaining({ code: 'TW_CLI_USAGE' }));
    expect(() => parseArgs(['--config'], specs)).toThrow(expect.objectContaining({ code: 'TW_CLI_USAGE' }));
    expect(() => parseArgs(['--rebuild-index=1'], specs)).toThrow(expect.objectContaining({ code: 'TW_CLI_USAGE' }));
  });
  test('help text lists every flag', () => {
    const text = helpText('tw-x --config FILE', 'Does x.', specs);
    expect(text).toContain('--config FILE');
    expect(text).toContain('--rebuild-index');
    expect(text).toContain('--help');
  });
});
