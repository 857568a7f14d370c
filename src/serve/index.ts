export { startSidecar, type RunningSidecar, type StartOptions } from './start-sidecar.js';
