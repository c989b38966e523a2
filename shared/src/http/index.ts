export * from './access.js';
export * from './error-handler.js';
