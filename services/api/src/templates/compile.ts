import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { errors, runtimePackages, type TemplateFile } from '@pds/shared';
import type { CompileResult } from './compile-program.js';

/** A compile that takes longer is stopped (a program that makes the type checker loop). */
export const COMPILE_TIMEOUT_MS = 60_000;

/** The folder whose node_modules hold the runtime packages (@pulumi/pulumi is in `<it>/node_modules/@pulumi/pulumi`). */
function nodeModulesParent(): string {
  const pulumi = runtimePackages().find((p) => p.name === '@pulumi/pulumi');
  if (!pulumi) throw new Error('@pulumi/pulumi is not installed beside the API');
  return dirname(dirname(dirname(pulumi.dir)));
}

/** At most this many compiles run at once (each a worker of up to 1 GiB); this many more wait, then 503. */
export const COMPILE_CONCURRENCY = 2;
export const COMPILE_WAITING_MAX = 8;
let running = 0;
const waiting: (() => void)[] = [];

/** Compiles a template program in a worker thread (TypeScript's checker is synchronous and takes seconds). */
export async function compileTemplate(files: TemplateFile[], main: string): Promise<CompileResult> {
  if (running >= COMPILE_CONCURRENCY) {
    if (waiting.length >= COMPILE_WAITING_MAX) {
      throw errors.unavailable(
        `${COMPILE_CONCURRENCY + COMPILE_WAITING_MAX} template compiles are under way or waiting; try again shortly`,
      );
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else running++;
  try {
    return await compileInWorker(files, main);
  } finally {
    // The slot passes to the next waiting compile, or is freed.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function compileInWorker(files: TemplateFile[], main: string): Promise<CompileResult> {
  const worker = new Worker(new URL('./compile-worker.js', import.meta.url), {
    workerData: { files, main, nodeModulesParent: nodeModulesParent() },
    resourceLimits: { maxOldGenerationSizeMb: 1024 },
  });
  return new Promise<CompileResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve({ ok: false, problems: [`the program did not compile within ${COMPILE_TIMEOUT_MS / 1000} s`] });
    }, COMPILE_TIMEOUT_MS);
    worker.once('message', (result: CompileResult) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
