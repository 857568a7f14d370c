export { startSidecar, type RunningSidecar, type StartOptions } from './start-sidecar.js';
export { checkConfig } from './check-config.js';
