import { defineErrors } from '@tw/errors';

export const rpcErrors = defineErrors('@tw/rpc', {
  TW_NOT_LEADER: { description: 'This coordinator is not the Raft leader; `details.leader` names the leader when known. Clients follow the hint and retry.', retryable: true },
  TW_RPC_UNAVAILABLE: { description: 'No coordinator answered (connection refused, reset, or no leader elected yet); retried with backoff before it reaches the caller.', retryable: true },
  TW_RPC_DEADLINE: { description: 'The call did not complete before its deadline; it may or may not have taken effect (commits are idempotent by request id).', retryable: true },
  TW_RPC_ABORTED: { description: 'The caller aborted the call (AbortSignal).' },
  TW_RPC_INTERNAL: { description: 'The coordinator failed without a coded error (a bug); the message carries what it said.' },
  TW_RPC_BAD_RESPONSE: { description: 'A reply could not be decoded into the expected message.' },
  TW_RPC_LISTEN_FAILED: { description: 'The gRPC server could not bind its address.' },
  TW_RPC_BAD_PACKED: { description: 'A packed record or commit list (packed_records, packed_blocks) does not decode: truncated, bad index or out-of-range number.' },
});
