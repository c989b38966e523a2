export { type ApiDeps, type App, buildApp } from './app.js';
export { type ApiQueues, createApiQueues } from './queues.js';
