export { buildGateway, CloseCodes, type GatewayDeps, type GatewayOptions } from './app.js';
export { type StreamMessage, streamJob } from './job-stream.js';
export { SubscriptionHub } from './subscription-hub.js';
