import { defineErrors } from '@tw/errors';

/**
 * Codes of the ISA-L backend itself. Misuse of the ErasureCodec interface (too few fragments,
 * wrong fragment size, bad argument, abort) throws @tw/erasure's TW_ERASURE_* codes, so that
 * callers branch the same way whichever codec they hold.
 */
export const isalErrors = defineErrors('@tw/erasure-isal', {
  TW_ISAL_UNAVAILABLE: {
    description: 'The ISA-L addon is not usable here: not built (`node-gyp rebuild` in libs/erasure-isal), libisal missing (apt-get install libisal-dev), or its self-test failed. Use @tw/erasure\'s codec instead.',
  },
  TW_ISAL_BAD_ARGUMENT: {
    description: 'The native addon refused its arguments (wrong fragment count, length or index, overlapping buffers, not a codec): a caller of the binding broke its contract.',
  },
  TW_ISAL_NO_MEMORY: {
    description: 'The native addon could not allocate its coding tables or job.',
    retryable: true,
  },
  TW_ISAL_CODEC: {
    description: 'ISA-L reported a failure while coding (a generator submatrix that does not invert, cancelled work); the details carry the native code.',
  },
});

export type IsalErrorCode = keyof typeof isalErrors.specs;
