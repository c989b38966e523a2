/** Worker thread: compiles one template program (compile-program.ts) off the API's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { compileProgram, type CompileInput } from './compile-program.js';

parentPort?.postMessage(compileProgram(workerData as CompileInput));
