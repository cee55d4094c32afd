import { createHash } from 'node:crypto';

/**
 * Keys that chain by prompt prefix: key i = hash(model fingerprint, tokens 0 .. (i+1)B), computed
 * incrementally as h_i = sha256(h_{i-1} || tokens of block i), h_{-1} = sha256(fingerprint).
 * Two prompts share key i exactly when they share the first (i+1)B tokens and the model; the
 * fingerprint is also spelled out in the key, so a state of another model is never looked up.
 */
export function prefixBlockKeys(fingerprint: string, tokens: ArrayLike<number>, blockTokens: number, blocks: number): string[] {
  const keys: string[] = [];
  let prev = createHash('sha256').update(`tw-llama-kv-v1\0${fingerprint}`).digest();
  const buf = Buffer.alloc(blockTokens * 4);
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < blockTokens; i++) buf.writeInt32LE(tokens[b * blockTokens + i]!, i * 4);
    prev = createHash('sha256').update(prev).update(buf).digest();
    keys.push(`llama.${fingerprint.slice(0, 16)}.b${blockTokens}.${b}.${prev.toString('hex').slice(0, 32)}`);
  }
  return keys;
}

/** Full blocks of a prompt that may come from the cache: at least one token is always evaluated, for the next-token logits. */
export function cacheableBlocks(promptTokens: number, blockTokens: number): number {
  return Math.max(0, Math.floor((promptTokens - 1) / blockTokens));
}
