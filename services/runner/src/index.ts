export { runPulumi } from './pulumi/pulumi-run.js';
export { createRunner, type Runner, type RunnerDeps } from './runner.js';
export { LineSink, MAX_LINE_CHARS } from './run/line-sink.js';
export { reconcileLostJobs } from './background/reconciler.js';
export { killTree } from './pulumi/kill-tree.js';
export { stackBackend } from './isolation/stack-state.js';
export { openSlotSandboxes, sandboxSettings } from './sandbox/prepare-sandbox.js';
