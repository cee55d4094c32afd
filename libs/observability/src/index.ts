export { observabilityErrors } from './errors.js';
export { type Logger, type LogLevel, createLogger } from './logger.js';
export { type AdminHttp, type AdminHttpOptions, type ReadinessReport, createMetricsRegistry, startAdminHttp } from './admin-http.js';
