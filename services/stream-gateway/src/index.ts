export { buildGateway, CloseCodes, type GatewayDeps, type GatewayOptions } from './app.js';
export { type StreamMessage, streamJob } from './job-stream.js';
export { RECENT_BYTES, SubscriptionHub } from './subscription-hub.js';
