export { attachPipeline, statusForReason, type Pipeline, type PipelineOptions } from './pipeline.js';
export { createForwarder, classifyUpstreamError, type ForwardHooks, type Forwarder, type ForwarderOptions, type UpstreamErrorKind } from './forwarder.js';
export { compileForwardedRewrite, type ForwardedMode } from './forwarded-headers.js';
export { createTelemetry, type LineLimiter, type PipelineObserver, type RequestRecord, type TelemetryOptions } from './telemetry.js';
