import { defineErrors } from '@tw/errors';

export const fragmentProtocolErrors = defineErrors('@tw/fragment-protocol', {
  TW_FRAGMENT_BAD_REQUEST: { description: 'A fragment-service request or reply is malformed (unknown op, bad lengths, bad fragment id); the storage node keeps serving.' },
  TW_FRAGMENT_MISMATCH: { description: 'A fragment header does not belong to the fragment id it was sent under (key hash, version or index differ).' },
  TW_FRAGMENT_PROTOCOL_VERSION: { description: 'The peer speaks a fragment-service protocol version this build does not.' },
});
