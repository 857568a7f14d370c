/**
 * The device simulator (`mtls-sidecar device enroll|renew`): a client of the device CA's
 * enrollment API that behaves like a phone app, for app teams and tests. It imports pki and
 * errors only, never enroll/: it talks to the CA over HTTPS like any device.
 */
export {
  DEFAULT_P12_PASSWORD,
  enrollDevice,
  renewDevice,
  type DeviceCallOptions,
  type DeviceEnrollment,
  type EnrollDeviceOptions,
  type RenewDeviceOptions,
} from './simulator.js';
export { deviceFilesIn, readDeviceFiles, type CurrentDevice, type DeviceFiles } from './device-files.js';
export { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_MS } from './enroll-client.js';
