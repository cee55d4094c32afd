export { coordinatorErrors } from './errors.js';
export { CoordinatorService, BlockMapStateMachine, type CoordinatorServiceOptions } from './coordinator-service.js';
export * from './convert.js';
