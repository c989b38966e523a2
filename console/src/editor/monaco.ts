// The template editor: Monaco with TypeScript (the runtime packages' types loaded from the API, so
// completion knows @pulumi/pulumi) and JSON. Loaded only by the editor page; its workers are files
// of this origin (the Content-Security-Policy allows nothing else).
import 'monaco-editor/esm/vs/editor/edcore.main.js';
import * as monaco from 'monaco-editor/esm/vs/editor/editor.api.js';
import 'monaco-editor/esm/vs/basic-languages/typescript/typescript.contribution.js';
import 'monaco-editor/esm/vs/basic-languages/javascript/javascript.contribution.js';
import * as typescriptContribution from 'monaco-editor/esm/vs/language/typescript/monaco.contribution.js';
import 'monaco-editor/esm/vs/language/json/monaco.contribution.js';

/** What the TypeScript contribution exports (its .d.ts declares nothing). */
interface TypeScriptLanguage {
  typescriptDefaults: {
    setCompilerOptions(options: Record<string, unknown>): void;
    setDiagnosticsOptions(options: { diagnosticCodesToIgnore?: number[] }): void;
    addExtraLib(content: string, path: string): unknown;
  };
  ScriptTarget: { ES2022: number };
  ModuleKind: { CommonJS: number };
  ModuleResolutionKind: { NodeJs: number };
}
const typescript = typescriptContribution as unknown as TypeScriptLanguage;

declare const EDITOR_WORKERS: Record<'editor' | 'ts' | 'json', string>;

(self as unknown as { MonacoEnvironment: unknown }).MonacoEnvironment = {
  getWorkerUrl(_id: string, label: string) {
    const file =
      label === 'typescript' || label === 'javascript' ? EDITOR_WORKERS.ts : label === 'json' ? EDITOR_WORKERS.json : EDITOR_WORKERS.editor;
    return new URL(`assets/${file}`, document.baseURI).toString();
  },
};

// Set before the first TypeScript model asks for its worker.
{
  const defaults = typescript.typescriptDefaults;
  defaults.setCompilerOptions({
    target: typescript.ScriptTarget.ES2022,
    module: typescript.ModuleKind.CommonJS,
    moduleResolution: typescript.ModuleResolutionKind.NodeJs,
    strict: true,
    esModuleInterop: true,
    allowNonTsExtensions: true,
  });
  // Node's own types are not loaded: `process` and `node:` imports are the publish check's to judge.
  defaults.setDiagnosticsOptions({ diagnosticCodesToIgnore: [2580, 2591, 2307] });
}

let typesLoaded: Promise<void> | undefined;

export interface DeclarationFile {
  path: string;
  content: string;
}

/** The runtime packages' declarations (the page fetches them: GET /v1/runtime/types), once per page. */
function loadTypes(fetchTypes: () => Promise<DeclarationFile[]>): Promise<void> {
  typesLoaded ??= fetchTypes().then((files) => {
    const defaults = typescript.typescriptDefaults;
    for (const file of files) defaults.addExtraLib(file.content, file.path);
  });
  return typesLoaded;
}

export interface MountedEditor {
  setValue(path: string, value: string): void;
  dispose(): void;
}

const LANGUAGE: Record<string, string> = { ts: 'typescript', js: 'javascript', json: 'json' };

export interface MountOptions {
  path: string;
  value: string;
  label: string;
  onChange(value: string): void;
  fetchTypes(): Promise<DeclarationFile[]>;
}

/** An editor in `host`, one model per file path (each keeps its own undo history). */
export function mountEditor(host: HTMLElement, options: MountOptions): MountedEditor {
  void loadTypes(options.fetchTypes).catch(() => undefined);
  const dark = matchMedia('(prefers-color-scheme: dark)');
  const modelFor = (path: string, value: string) => {
    const uri = monaco.Uri.parse(`file:///template/${path}`);
    const existing = monaco.editor.getModel(uri);
    if (existing) return existing;
    return monaco.editor.createModel(value, LANGUAGE[path.split('.').pop() ?? ''] ?? 'plaintext', uri);
  };
  const editor = monaco.editor.create(host, {
    model: modelFor(options.path, options.value),
    automaticLayout: true,
    minimap: { enabled: false },
    fontSize: 13,
    scrollBeyondLastLine: false,
    ariaLabel: options.label,
    theme: dark.matches ? 'vs-dark' : 'vs',
    tabSize: 2,
  });
  const onTheme = () => monaco.editor.setTheme(dark.matches ? 'vs-dark' : 'vs');
  dark.addEventListener('change', onTheme);
  const changes = editor.onDidChangeModelContent(() => options.onChange(editor.getValue()));
  return {
    setValue(path: string, value: string) {
      const model = modelFor(path, value);
      if (editor.getModel() !== model) editor.setModel(model);
      if (model.getValue() !== value) model.setValue(value);
    },
    dispose() {
      dark.removeEventListener('change', onTheme);
      changes.dispose();
      editor.dispose();
    },
  };
}
