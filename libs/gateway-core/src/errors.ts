import { defineErrors } from '@tw/errors';

/** Error codes of the gateway's data path. Callers (front-ends) branch on `code`. */
export const gatewayErrors = defineErrors('@tw/gateway-core', {
  TW_GATEWAY_BAD_INPUT: { description: 'A gateway call got an invalid argument (namespace, key, value, option); the message names it. Nothing was done.' },
  TW_GATEWAY_VALUE_TOO_LARGE: { description: 'The value is larger than the DRAM tier or the largest block the gateway accepts; split it or raise the tier size.' },
  TW_GATEWAY_ABORTED: { description: 'The call was aborted by its AbortSignal. A put aborted after its DRAM accept may still be written and committed.' },
  TW_GATEWAY_CLOSED: { description: 'The gateway is closed (or closing); no new calls are accepted.' },
  TW_GATEWAY_NO_PLACEMENT: {
    description: 'The gateway has no usable cluster map / PG map yet (coordinators unreachable, too few storage nodes up) or the PG map is narrower than the redundancy policy.',
    retryable: true,
  },
  TW_GATEWAY_WRITE_FAILED: {
    description: 'Not every fragment of a block could be persisted on a storage node (after trying the next candidates); nothing was committed. Its stored fragments are orphans.',
    retryable: true,
  },
  TW_GATEWAY_COMMIT_FAILED: { description: 'The coordinators refused or failed to commit the block record; the cause carries their code. Its fragments are orphans.' },
  TW_GATEWAY_BLOCK_UNAVAILABLE: {
    description: 'Fewer fragments of the block than the redundancy needs could be read (more than m lost, nodes down or late): the block cannot be served now. Never returned as wrong bytes.',
    retryable: true,
  },
  TW_GATEWAY_BLOCK_CORRUPT: {
    description: 'Enough fragments were read but no combination of them reassembles to the committed checksum: the stored block is damaged beyond what parity can repair.',
  },
  TW_GATEWAY_LOOKUP_FAILED: { description: 'The coordinators could not answer a lookup; the cause carries their code.', retryable: true },
  TW_GATEWAY_BAD_RECORD: { description: 'A block record from the coordinators is malformed or names a node this gateway does not know; the block is not served from it.' },
});

export type GatewayErrorCode = keyof typeof gatewayErrors.specs;
