import { defineErrors } from '@tw/errors';

export const erasureErrors = defineErrors('@tw/erasure', {
  TW_ERASURE_TOO_FEW_FRAGMENTS: { description: 'Fewer fragments survive than the policy needs to rebuild the block (more than m lost): the block is unrecoverable from these fragments.' },
  TW_ERASURE_FRAGMENT_SIZE: { description: 'A fragment handed to the codec does not have the size the policy and payload length imply.' },
  TW_ERASURE_BAD_ARGUMENT: { description: 'A codec call got an impossible argument (policy out of bounds, negative length, fragment index out of range).' },
  TW_ERASURE_ABORTED: { description: 'An encode or reconstruct was aborted by its caller signal.', retryable: true },
  TW_ERASURE_CODEC: { description: 'The Reed-Solomon codec itself reported a failure; the details carry its message.' },
});
