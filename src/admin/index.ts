export { startAdminServer, type AdminServer, type AdminServerOptions, type MetricsSource, type ReadinessCheck } from './admin-server.js';
