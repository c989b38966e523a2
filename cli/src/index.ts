export { runCli } from './program.js';
export { EXIT, exitCodeOfStatus } from './exit-codes.js';
