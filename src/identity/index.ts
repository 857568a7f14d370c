export { extractIdentity, pickDeviceId, type CertIdentity, type DeviceIdRule, type SubjectFields } from './extract.js';
export {
  compileHeaderPlan,
  normalizeHeaderName,
  type HeaderPlan,
  type IdentityHeaderOptions,
  type RenderedHeaders,
} from './headers.js';
