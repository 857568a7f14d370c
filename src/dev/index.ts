export { runDev, type DevOptions, type DevRun } from './run-dev.js';
export { ensureDevPki, DEV_P12_PASSWORD, type DevPki } from './dev-pki.js';
export { startEchoUpstream, type EchoReply, type EchoUpstream } from './echo-upstream.js';
