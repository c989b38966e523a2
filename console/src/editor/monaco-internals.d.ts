// Modules of monaco-editor's ESM build that its package declares no types for (the editor's worker).
declare module 'monaco-editor/esm/vs/common/initialize.js' {
  export function initialize(factory: (ctx: unknown, createData: unknown) => unknown): void;
}

declare module 'monaco-editor/esm/vs/language/typescript/tsWorker.js' {
  export class TypeScriptWorker {
    constructor(ctx: unknown, createData: unknown);
  }
}
