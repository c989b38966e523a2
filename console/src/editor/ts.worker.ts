// Monaco's TypeScript worker (its own ts.worker.js, started the same way) with one change: its
// diagnostics leave the worker as plain data. TypeScript attaches a function to some (an import it
// cannot resolve carries `repopulateInfo`), which postMessage cannot clone: all of them would be lost.
import { initialize } from 'monaco-editor/esm/vs/common/initialize.js';
import { TypeScriptWorker } from 'monaco-editor/esm/vs/language/typescript/tsWorker.js';

type Diagnostics = (fileName: string) => Promise<unknown[]>;

class PlainDiagnosticsWorker extends TypeScriptWorker {}

for (const name of ['getSyntacticDiagnostics', 'getSemanticDiagnostics', 'getSuggestionDiagnostics', 'getCompilerOptionsDiagnostics']) {
  const original = (TypeScriptWorker.prototype as unknown as Record<string, Diagnostics>)[name];
  if (!original) continue;
  (PlainDiagnosticsWorker.prototype as unknown as Record<string, Diagnostics>)[name] = async function (this: unknown, fileName: string) {
    return JSON.parse(JSON.stringify(await original.call(this, fileName))) as unknown[];
  };
}

self.onmessage = () => {
  initialize((ctx: unknown, createData: unknown) => new PlainDiagnosticsWorker(ctx, createData));
};
