/**
 * The job lifecycle: its statuses and the moves between them, why jobs end, the one way a job
 * ends (`endJob`) and what follows every end (`runAfterEnd`). docs/architecture.md, "The job lifecycle".
 */
export * from './after-end.js';
export * from './compensation.js';
export * from './end-job.js';
export * from './end-reasons.js';
export * from './queue.js';
export * from './recovery.js';
export * from './remediation.js';
export * from './transitions.js';
