export { CoordinatorConfigSchema, type CoordinatorConfig } from './config.js';
export { coordinatorAppErrors } from './errors.js';
export { startCoordinator, type RunningCoordinator } from './coordinator.js';
