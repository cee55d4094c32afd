export { coordinatorErrors } from './errors.js';
export { CoordinatorService, BlockMapStateMachine, type CoordinatorServiceOptions } from './coordinator-service.js';
export * from './convert.js';
export { BadFragmentLog, type BadFragmentEntry, type BadFragmentInput } from './bad-fragment-log.js';
export { BAD_FRAGMENT_REPORTS_MAX } from './fragment-handlers.js';
export { packStoredRecords } from './stored-records.js';
