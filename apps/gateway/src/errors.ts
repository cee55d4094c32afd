import { defineErrors } from '@tw/errors';

/** Error codes of the gateway process and its front-ends (the data path's own are @tw/gateway-core's). */
export const gatewayAppErrors = defineErrors('@tw/gateway', {
  TW_GATEWAY_APP_CONFIG: { description: 'The gateway config is inconsistent (no front-end to listen on, a namespace token that is empty or shared by two namespaces, an lm:// namespace without access).' },
  TW_GATEWAY_APP_START: { description: 'A gateway front-end could not listen on its address (in use, not permitted); the message names the front-end and the address.' },
  TW_GATEWAY_APP_BAD_REQUEST: { description: 'An HTTP request is malformed: a key that is not valid URL encoding, a lookup body that is not JSON {keys: [...]}, a missing body. Nothing was done.' },
  TW_GATEWAY_APP_UNAUTHORIZED: { description: 'The namespace needs a token and the request carries none or a wrong one (HTTP: Authorization: Bearer TOKEN; RESP: AUTH TOKEN or AUTH NAMESPACE TOKEN; native: the token of connectClient). Tokens come from the gateway config and from the coordinators\' namespaces.' },
  TW_GATEWAY_APP_NOT_FOUND: { description: 'No committed (or locally accepted) value exists under the key, or the route does not exist.' },
  TW_GATEWAY_APP_BUSY: { description: 'The HTTP (or native) front-end holds as many request body bytes as http.bodyInflightBytesMax (native.inflightBytesMax) allows; retry later.', retryable: true },
  TW_GATEWAY_APP_TOKEN_CHECK_FAILED: {
    description: 'The token is not one the gateway knows and the coordinators, which hold the namespaces\' tokens, could not be asked (unreachable, or the check was aborted); retry. Tokens already verified keep working through a coordinator outage.',
    retryable: true,
  },
  TW_GATEWAY_APP_DELIVER_OFF: { description: 'A native DELIVER request reached a gateway without native.deliveryDir, or came from another host (DELIVER writes into files on the gateway\'s host: loopback clients only). Use GET.' },
  TW_GATEWAY_APP_DELIVER_FILE: { description: 'The DELIVER target is not a regular file in the delivery folder (missing, a link, not writable) or a scatter range lies past its end (the gateway neither creates nor extends files); the message says which.' },
  TW_GATEWAY_APP_DELIVER_RANGE: { description: 'The value is shorter than the DELIVER tail, or its head (the bytes before the tail) is over 64 KiB; nothing was written.' },
  TW_GATEWAY_APP_BODY_TOO_LARGE: { description: 'The request body is larger than the configured http.bodyBytesMax; split the value or raise the bound.' },
});

export type GatewayAppErrorCode = keyof typeof gatewayAppErrors.specs;
