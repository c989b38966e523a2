export * from './local-deps.js';
export * from './processes.js';
export * from './launcher.js';
export * from './sample-credentials.js';
export * from './dockerfile.js';
export * from './job-writable.js';
export * from './test-isolation.js';
