import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { llamaOffloadErrors } from './errors.js';

/**
 * llama.cpp through node-llama-cpp's prebuilt CPU binary (@node-llama-cpp/linux-x64): never
 * downloads, never builds (its postinstall is not run here, and `build: 'never'` makes a missing
 * binary an error instead of a cmake run).
 */
export async function loadEngine(options: { threads?: number } = {}): Promise<Llama> {
  try {
    return await getLlama({
      gpu: false,
      build: 'never',
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
      ...(options.threads === undefined ? {} : { maxThreads: options.threads }),
    });
  } catch (err) {
    throw llamaOffloadErrors.create('TW_LLAMA_ENGINE', `cannot load node-llama-cpp's prebuilt binary: ${(err as Error).message}`, { cause: err });
  }
}

export async function loadModel(llama: Llama, path: string): Promise<LlamaModel> {
  try {
    return await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  } catch (err) {
    throw llamaOffloadErrors.create('TW_LLAMA_ENGINE', `cannot load model ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export interface ContextOptions {
  readonly contextSize: number;
  readonly threads: number;
  readonly batchSize?: number;
}

/**
 * One sequence in a fresh context. Flash attention on: llama.cpp then keeps V untransposed, so a
 * block of tokens is one contiguous run per layer in the state file and a restore writes each
 * fetched block straight into its place (with a transposed V every block scatters into
 * n_embd_v_gqa pieces per layer). Saver and loader must agree: the layout is part of the model
 * fingerprint (ENGINE_LAYOUT_TAG).
 */
export async function freshSequence(model: LlamaModel, o: ContextOptions): Promise<{ context: LlamaContext; sequence: LlamaContextSequence }> {
  const context = await model.createContext({
    contextSize: o.contextSize,
    sequences: 1,
    threads: o.threads,
    batchSize: o.batchSize ?? 512,
    flashAttention: true,
    ignoreMemorySafetyChecks: true,
  });
  return { context, sequence: context.getSequence() };
}

/** Next-token probabilities after `tokens` (the last one is evaluated with generateNext). */
export async function evaluateForNext(sequence: LlamaContextSequence, tokens: readonly Token[]): Promise<{ probabilities: Map<Token, number>; token: Token }> {
  if (tokens.length === 0) throw llamaOffloadErrors.create('TW_LLAMA_ENGINE', 'nothing to evaluate');
  const input = tokens.map((t, i) => (i === tokens.length - 1 ? ([t, { generateNext: { probabilities: true, token: true, options: { temperature: 0 } } }] as const) : t));
  const out = await sequence.controlledEvaluate(input as Parameters<LlamaContextSequence['controlledEvaluate']>[0]);
  const last = out[tokens.length - 1];
  const probabilities = last?.next.probabilities;
  const token = last?.next.token;
  if (probabilities === undefined || token === undefined || token === null) throw llamaOffloadErrors.create('TW_LLAMA_ENGINE', 'the engine produced no next token');
  return { probabilities, token };
}
