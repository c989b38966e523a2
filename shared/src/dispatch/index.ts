export * from './dispatcher.js';
export * from './fair-share.js';
export * from './runner-pool.js';
export * from './waiting-jobs.js';
export * from './wait-reason.js';
