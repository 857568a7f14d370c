export { startAdminServer, type AdminServer, type AdminServerOptions, type MetricsSource, type ReadinessCheck, type TopDevicesOrder } from './admin-server.js';
