export { startSidecar } from './start-sidecar.js';
export type { RunningSidecar, StartOptions } from './running-sidecar.js';
export { runServe } from './run-serve.js';
export { checkConfig } from './check-config.js';
