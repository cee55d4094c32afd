import type { Token } from 'node-llama-cpp';
import { FIRST_NORMAL_TOKEN } from './gguf/generate-llama.js';
import { SeededRandom } from './gguf/random.js';

/** A prompt of `n` token ids drawn from the model's normal tokens, the same for the same seed. */
export function seededPrompt(n: number, vocabSize: number, seed: number): Token[] {
  const r = new SeededRandom(seed, 0x70);
  return Array.from({ length: n }, () => (FIRST_NORMAL_TOKEN + r.nextInt(vocabSize - FIRST_NORMAL_TOKEN)) as Token);
}

/** Bit-for-bit equality of two next-token distributions (every token, Object.is on each float). */
export function sameProbabilities(a: ReadonlyMap<Token, number>, b: ReadonlyMap<Token, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [t, p] of a) if (!Object.is(b.get(t), p)) return false;
  return true;
}
