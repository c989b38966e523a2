export * from './local-deps.js';
export * from './processes.js';
