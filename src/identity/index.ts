export { extractIdentity, pickDeviceId, type CertIdentity, type DeviceIdRule } from './extract.js';
export {
  applyIdentityHeaders,
  compileHeaderPlan,
  normalizeHeaderName,
  stripHeaders,
  type HeaderPlan,
  type IdentityHeaderOptions,
  type RenderedHeaders,
} from './headers.js';
