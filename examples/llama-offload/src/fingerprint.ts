import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Checksum64Stream } from '@tw/block-format';

/**
 * Everything besides the weights that decides the bytes of a sequence state: a state is only
 * loadable by the same engine build with the same cache layout.
 */
export const ENGINE_LAYOUT_TAG = 'node-llama-cpp@3.21.1;llama.cpp-state-seq-v3;kv=f16;flash-attention=on;cpu';

/**
 * The model fingerprint keys embed: sha256(layout tag, xxh64 of every byte of the GGUF), hex.
 * Reading 300 MB takes a fraction of a second from the page cache.
 */
export async function modelFingerprint(ggufPath: string, signal?: AbortSignal): Promise<string> {
  const h = new Checksum64Stream();
  const stream = createReadStream(ggufPath, { highWaterMark: 4 * 1024 * 1024, ...(signal === undefined ? {} : { signal }) });
  for await (const chunk of stream) h.update(chunk as Buffer);
  return createHash('sha256').update(ENGINE_LAYOUT_TAG).update('\0').update(h.digest().toString(16)).digest('hex').slice(0, 32);
}
