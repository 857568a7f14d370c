export { startAdminServer, type AdminServer, type AdminServerOptions, type MetricsSource, type ReadinessCheck } from './admin-server.js';
export { tokenDigest, type QuarantineApi, type QuarantineEntryView } from './quarantine-api.js';
