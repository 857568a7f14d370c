export { startAdminServer, type AdminServer, type AdminServerOptions, type MetricsSource, type ReadinessCheck, type TopDevicesOrder } from './admin-server.js';
export { tokenDigest } from './admin-token.js';
export { type QuarantineApi, type QuarantineEntryView } from './quarantine-api.js';
