export { startSidecar, type RunningSidecar, type StartOptions } from './start-sidecar.js';
export { runServe } from './run-serve.js';
export { checkConfig } from './check-config.js';
