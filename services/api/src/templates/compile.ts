import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { runtimePackages, type TemplateFile } from '@pds/shared';
import type { CompileResult } from './compile-program.js';

/** A compile that takes longer is stopped (a program that makes the type checker loop). */
export const COMPILE_TIMEOUT_MS = 60_000;

/** The folder whose node_modules hold the runtime packages (@pulumi/pulumi is in `<it>/node_modules/@pulumi/pulumi`). */
function nodeModulesParent(): string {
  const pulumi = runtimePackages().find((p) => p.name === '@pulumi/pulumi');
  if (!pulumi) throw new Error('@pulumi/pulumi is not installed beside the API');
  return dirname(dirname(dirname(pulumi.dir)));
}

/** Compiles a template program in a worker thread (TypeScript's checker is synchronous and takes seconds). */
export function compileTemplate(files: TemplateFile[], main: string): Promise<CompileResult> {
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
