export { GatewayConfigSchema, type GatewayConfig } from './config.js';
export { gatewayAppErrors, type GatewayAppErrorCode } from './errors.js';
export { AccessPolicy, isLoopback } from './access.js';
export { startGateway, type RunningGateway } from './gateway.js';
export { LM_META_BYTES, decodeLmValue, encodeLmMeta } from './lm-frontend.js';
