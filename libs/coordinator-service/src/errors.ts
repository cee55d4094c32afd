import { defineErrors } from '@tw/errors';

export const coordinatorErrors = defineErrors('@tw/coordinator-service', {
  TW_COORD_FORBIDDEN: { description: 'The request\'s namespace token (or the admin token) is missing or wrong.' },
  TW_COORD_BAD_REQUEST: { description: 'A control-plane request is malformed (missing field, bad number, too many keys); the message names the field.' },
  TW_COORD_NOT_READY: { description: 'The coordinator group has no cluster map yet (the first leader is still initialising it); retry shortly.', retryable: true },
});
