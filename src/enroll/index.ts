export { runCa, type RunCaOptions, type RunningCa } from './run-ca.js';
export { initCa, type CaInitOptions, type CaInitResult } from './ca-init.js';
export { renderPins, type PinsFormat } from './pins-report.js';
export type { CertStatus } from './enroll-service.js';
