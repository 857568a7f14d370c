export { startAdminServer, type AdminServer, type AdminServerOptions, type ReadinessCheck } from './admin-server.js';
