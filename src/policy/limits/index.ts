export { createDeviceLimits, type DeviceLimits, type DeviceLimitsHooks, type DeviceLimitsOptions, type LimitName, type LimitRefusal, type RouteRate } from './device-limits.js';
export { mergeTopDevices, type TopDevice, type TopOrder } from './device-table.js';
export { BYTES_PER_CONNECTION, cgroupMemoryLimit, resolveConnectionCap, type ConnectionCap } from './connection-cap.js';
export { takeToken, type BucketState, type Rate } from './token-bucket.js';
