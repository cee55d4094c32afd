/**
 * Runs every scenario in testdata/*.txt through the interaction environment and compares the
 * trace with the expected output. `REWRITE=1 npx vitest run test/interaction.test.ts` rewrites
 * the expected outputs (review the diff before keeping it).
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseFile, writeFile } from './datadriven.js';
import { InteractionEnv } from './interaction-env.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testdata');
const rewrite = process.env['REWRITE'] === '1';
const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

describe('interaction scenarios (testdata/*.txt)', () => {
  it('has scenario files', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const f of files) {
    it(f, () => {
      const path = join(dir, f);
      const { blocks, trailing } = parseFile(path);
      const env = new InteractionEnv();
      const outputs: string[] = [];
      for (const b of blocks) {
        let out: string;
        try {
          out = env.handle(b.command);
        } catch (err) {
          throw new Error(`${f}:${b.command.line}: ${b.command.text}: ${(err as Error).stack ?? String(err)}`);
        }
        if (out === '') out = 'ok';
        outputs.push(out);
        if (!rewrite) expect(out, `${f}:${b.command.line}: ${b.command.text}`).toBe(b.expected);
      }
      if (rewrite) writeFile(path, blocks, outputs, trailing);
    });
  }
});
