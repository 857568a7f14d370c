export { attachPipeline, statusForReason, type PipelineObserver, type PipelineOptions } from './pipeline.js';
export { createForwarder, classifyUpstreamError, type Forwarder, type ForwarderOptions, type UpstreamErrorKind } from './forwarder.js';
export { compileForwardedRewrite, type ForwardedMode } from './forwarded-headers.js';
