/**
 * Compiles an uploaded template's program (TypeScript or JavaScript) to CommonJS, with full type
 * checking against the runtime packages, and refuses imports of packages the runners do not
 * provide. Pure and synchronous (TypeScript's compiler is): run it in a worker (compile-worker.ts).
 */
import { realpathSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { compiledPath, packageOf, RUNTIME_PACKAGES, type TemplateFile } from '@pds/shared';

export interface CompileInput {
  files: TemplateFile[];
  main: string;
  /** The folder holding node_modules with the runtime packages (and @types/node). */
  nodeModulesParent: string;
}

export type CompileResult = { ok: true; compiled: TemplateFile[] } | { ok: false; problems: string[] };

/** At most this many problems are reported (the first ones usually explain the rest). */
const MAX_PROBLEMS = 20;

const BUILTINS = new Set(builtinModules);
const isBuiltin = (specifier: string) => specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0] as string);

const isProgramFile = (path: string) => /\.(ts|js|mts|cts)$/.test(path) && !path.endsWith('.d.ts');

/** Each import of a package that is neither Node's nor a runtime package, named with its file and line. */
export function foreignImports(files: TemplateFile[]): string[] {
  const problems: string[] = [];
  for (const file of files.filter((f) => isProgramFile(f.path))) {
    const source = ts.createSourceFile(file.path, file.content, ts.ScriptTarget.ES2022, true);
    for (const { specifier, pos } of moduleSpecifiers(source)) {
      const name = packageOf(specifier);
      if (name === undefined || isBuiltin(specifier) || (RUNTIME_PACKAGES as readonly string[]).includes(name)) continue;
      const { line } = source.getLineAndCharacterOfPosition(pos);
      problems.push(
        `${file.path}:${line + 1}: imports "${specifier}": package ${name} is not provided by the runners (GET /v1/runtime lists the packages they provide: ${RUNTIME_PACKAGES.join(', ')})`,
      );
    }
  }
  return problems;
}

/**
 * Every module a file names: `import … from`, `export … from`, `import x = require()`, `require()`
 * and `import()` with a literal (a method named `require`, such as `config.require('key')`, is not one).
 */
function moduleSpecifiers(source: ts.SourceFile): { specifier: string; pos: number }[] {
  const found: { specifier: string; pos: number }[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ specifier: node.text, pos: node.getStart(source) });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  strict: true,
  esModuleInterop: true,
  skipLibCheck: true,
  allowJs: true,
  resolveJsonModule: true,
  types: ['node'],
  noEmitOnError: true,
  newLine: ts.NewLineKind.LineFeed,
};

/** Compiles the program; every problem names its file and line (`index.ts:3:7: …`). */
export function compileProgram(input: CompileInput): CompileResult {
  if (!input.files.some((f) => f.path === input.main)) {
    return { ok: false, problems: [`main: ${input.main} is not one of the files`] };
  }
  const foreign = foreignImports(input.files);
  if (foreign.length > 0) return { ok: false, problems: foreign.slice(0, MAX_PROBLEMS) };

  // The files live, for the compiler, in a folder beside node_modules, so that imports of the
  // runtime packages resolve to their real types; nothing is written there.
  const root = join(input.nodeModulesParent, '.pds-template');
  const virtual = new Map(input.files.map((f) => [join(root, f.path), f.content]));
  const outDir = join(root, '.out');
  const compiled: TemplateFile[] = [];
  const host = ts.createCompilerHost({
    ...OPTIONS,
    outDir,
    rootDir: root,
    typeRoots: [join(input.nodeModulesParent, 'node_modules', '@types')],
  });
  // The program sees its own files, the packages in node_modules and TypeScript's own libraries,
  // nothing else of this machine: `import '../../../etc/app.json'` would put a file's content in a
  // type error's text.
  const readable = [join(input.nodeModulesParent, 'node_modules') + '/', dirname(ts.getDefaultLibFilePath(OPTIONS)) + '/'];
  // By the real path too: workspace packages in node_modules are links to the service's own source.
  const realReadable = readable.map((dir) => `${realpathOrUndefined(dir) ?? dir}/`.replace(/\/+$/, '/'));
  const mayRead = (path: string) => {
    if (!readable.some((dir) => path.startsWith(dir)) || path.split('/').includes('..')) return false;
    const real = realpathOrUndefined(path);
    return real === undefined || realReadable.some((dir) => `${real}/`.startsWith(dir));
  };
  const { getSourceFile, fileExists, readFile, directoryExists } = host;
  host.fileExists = (path) => virtual.has(path) || (mayRead(path) && fileExists.call(host, path));
  host.readFile = (path) => virtual.get(path) ?? (mayRead(path) ? readFile.call(host, path) : undefined);
  host.directoryExists = (path) =>
    path === root ||
    [...virtual.keys()].some((file) => file.startsWith(path + '/')) ||
    (mayRead(path + '/') && (directoryExists?.call(host, path) ?? false)) ||
    readable.some((dir) => dir.startsWith(path + '/'));
  host.getSourceFile = (path, language, onError, create) => {
    const text = virtual.get(path);
    if (text !== undefined) return ts.createSourceFile(path, text, language, true);
    return mayRead(path) ? getSourceFile.call(host, path, language, onError, create) : undefined;
  };
  host.writeFile = (path, text) => {
    if (path.endsWith('.js')) compiled.push({ path: relative(outDir, path), content: text });
  };
  const roots = input.files.filter((f) => isProgramFile(f.path)).map((f) => join(root, f.path));
  const program = ts.createProgram({
    rootNames: roots,
    options: { ...OPTIONS, outDir, rootDir: root, typeRoots: [join(input.nodeModulesParent, 'node_modules', '@types')] },
    host,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length > 0) return { ok: false, problems: diagnostics.slice(0, MAX_PROBLEMS).map((d) => describe(d, root)) };
  const emitted = program.emit();
  if (emitted.emitSkipped || emitted.diagnostics.length > 0) {
    return { ok: false, problems: emitted.diagnostics.slice(0, MAX_PROBLEMS).map((d) => describe(d, root)) };
  }
  // JSON files a program reads are kept as they are.
  for (const file of input.files.filter((f) => f.path.endsWith('.json'))) compiled.push(file);
  if (!compiled.some((f) => f.path === compiledPath(input.main))) {
    return { ok: false, problems: [`main: ${input.main} produced no JavaScript`] };
  }
  return { ok: true, compiled: compiled.sort((a, b) => a.path.localeCompare(b.path)) };
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

function describe(diagnostic: ts.Diagnostic, root: string): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  if (!diagnostic.file || diagnostic.start === undefined) return message;
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  // A file of a package is named from node_modules on: the service's own paths are not the caller's business.
  const name = diagnostic.file.fileName;
  const path = name.startsWith(root + '/')
    ? relative(root, name)
    : name.includes('node_modules/')
      ? name.slice(name.lastIndexOf('node_modules/'))
      : basename(name);
  return `${path}:${line + 1}:${character + 1}: ${message}`;
}
