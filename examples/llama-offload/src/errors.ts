import { defineErrors } from '@tw/errors';

export const llamaOffloadErrors = defineErrors('@tw/example-llama-offload', {
  TW_LLAMA_MODEL_SPEC: { description: 'Model dimensions or metadata that llama.cpp would refuse (or abort the process on); the message names the field.' },
  TW_LLAMA_STATE_FORMAT: { description: "A llama.cpp sequence state file (or a block cut from one) is not in the layout this example understands; nothing is stored or loaded." },
  TW_LLAMA_BLOCK_CORRUPT: { description: 'A block fetched from the warehouse failed its checksum, its model fingerprint or its framing; it is never loaded (the request falls back to prefill).' },
  TW_LLAMA_WAREHOUSE: { description: 'The gateway answered an error or could not be reached; the request falls back to prefill.', retryable: true },
  TW_LLAMA_STAGING: { description: 'The state file handed to llama.cpp could not be written (staging folder full or unwritable, or a write misused); the restore falls back to prefill.' },
  TW_LLAMA_ENGINE: { description: 'node-llama-cpp could not load its prebuilt binary or the model (nothing is ever downloaded or built at run time).' },
});
