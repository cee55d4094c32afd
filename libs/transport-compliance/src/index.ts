export { transportComplianceSuite } from './suite.js';
export type { ComplianceBackend, ComplianceSupports, RawConnection } from './backend.js';
export { fillPattern, hasPattern, pattern, seededRandom } from './patterns.js';
