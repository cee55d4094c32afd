/**
 * The one file that loads the Reed-Solomon native addon (@ronomon/reed-solomon, built from its
 * own C sources at install time: it is listed under `allowScripts` in the root package.json).
 * Loaded with require so that bundlers and test runners leave the .node file alone.
 */
import { createRequire } from 'node:module';
import { erasureErrors } from './errors.js';

export interface RsContext {
  readonly __brand: 'ReedSolomonContext';
}

interface RsBinding {
  readonly MAX_K: number;
  readonly MAX_M: number;
  create(k: number, m: number): RsContext;
  encode(
    context: RsContext,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error: Error | undefined) => void,
  ): void;
}

function load(): RsBinding {
  try {
    return createRequire(import.meta.url)('@ronomon/reed-solomon') as RsBinding;
  } catch (err) {
    throw erasureErrors.create('TW_ERASURE_CODEC', 'the Reed-Solomon addon @ronomon/reed-solomon is not built: run `npm ci` (it needs allowScripts)', { cause: err });
  }
}

export const rs: RsBinding = load();

/** Runs one encode/decode on the thread pool. Sources and targets are bit masks of shard indexes. */
export function rsEncode(ctx: RsContext, sources: number, targets: number, data: Buffer, parity: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    rs.encode(ctx, sources, targets, data, 0, data.length, parity, 0, parity.length, (error) => {
      if (error) reject(erasureErrors.create('TW_ERASURE_CODEC', `Reed-Solomon codec failed: ${error.message}`, { cause: error }));
      else resolve();
    });
  });
}
