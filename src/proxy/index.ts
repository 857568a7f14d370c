export { attachPipeline, statusForReason, type Pipeline, type PipelineOptions } from './pipeline.js';
export { createForwarder, classifyUpstreamError, type ForwardHandle, type ForwardHooks, type Forwarder, type ForwarderOptions, type UpstreamErrorKind } from './forwarder.js';
export { compileUpstreamHeaders, type ForwardedMode, type UpstreamHeaderBuilder, type UpstreamHeaderOptions } from './upstream-headers.js';
export { createTelemetry, type LineLimiter, type PipelineObserver, type RequestRecord, type TelemetryOptions } from './telemetry.js';
export { peerAddressOf, type ClientAddressOf } from './client-address.js';
