// Bundles the console into dist/public: index.html (naming the hashed assets), assets/ (the app, its
// lazily loaded chunks, styles, the editor's workers and fonts) and a .gz beside each text asset.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..', '..');
const out = join(pkg, 'dist', 'public');
const assets = join(out, 'assets');

const COMMON = {
  absWorkingDir: pkg,
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  target: 'es2022',
  outdir: assets,
  assetNames: 'files/[name]-[hash]',
  loader: { '.ttf': 'file' },
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
} as const;

async function main(): Promise<void> {
  await rm(out, { recursive: true, force: true });
  await mkdir(assets, { recursive: true });
  const editor = await buildEditor(await buildEditorWorkers());
  const result = await build({
    ...COMMON,
    entryPoints: { app: 'src/main.tsx' },
    // The editor is a module of its own, imported by URL on the editor page only.
    define: { EDITOR_ASSETS: JSON.stringify(editor) },
    format: 'esm',
    splitting: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryNames: '[name]-[hash]',
    chunkNames: 'chunks/[name]-[hash]',
  });
  await gzipTextFiles(result.metafile, []);
  const entry = (name: string, ext: string) => link(outputOf(result.metafile, name, ext));
  await writeFile(join(out, 'index.html'), indexHtml(entry('app', '.js'), entry('app', '.css')));
  await gzipTextFiles({ inputs: {}, outputs: {} }, [join(out, 'index.html')]);
  console.log(`console built into ${relative(process.cwd(), out)}`);
}

/** Monaco's workers (classic scripts, as Monaco starts them), by the names the editor asks for; file names relative to assets/. */
async function buildEditorWorkers(): Promise<Record<string, string>> {
  const entries = {
    'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
    // Monaco's, with its diagnostics made plain data (src/editor/ts.worker.ts says why).
    'ts.worker': 'src/editor/ts.worker.ts',
    'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
  };
  const result = await build({ ...COMMON, sourcemap: false, entryPoints: entries, format: 'iife', entryNames: 'workers/[name]-[hash]' });
  await gzipTextFiles(result.metafile, []);
  const named = (name: string) => relative(assets, join(pkg, outputOf(result.metafile, name, '.js', 'workers/') ?? ''));
  return { editor: named('editor.worker'), ts: named('ts.worker'), json: named('json.worker') };
}

/** The output file of entry `name` (with ext), relative to the package (dist/public/assets/…). */
/** Monaco and the editor around it: one module and its stylesheet (file names relative to assets/). */
async function buildEditor(workers: Record<string, string>): Promise<{ js: string; css: string }> {
  const result = await build({
    ...COMMON,
    entryPoints: { editor: 'src/editor/monaco.ts' },
    define: { EDITOR_WORKERS: JSON.stringify(workers) },
    format: 'esm',
    entryNames: 'editor/[name]-[hash]',
  });
  await gzipTextFiles(result.metafile, []);
  const named = (ext: string) => relative(assets, join(pkg, outputOf(result.metafile, 'editor', ext, 'editor/') ?? ''));
  return { js: named('.js'), css: named('.css') };
}

function outputOf(metafile: Metafile, name: string, ext: string, folder = ''): string | undefined {
  return Object.keys(metafile.outputs).find(
    (file) => basename(file).startsWith(`${name}-`) && file.endsWith(ext) && file.includes(`/assets/${folder}`),
  );
}

/** The page's link to an output (relative to index.html). */
function link(file: string | undefined): string | undefined {
  return file ? relative(out, join(pkg, file)) : undefined;
}

function indexHtml(script: string | undefined, style: string | undefined): string {
  if (!script) throw new Error('the build made no app script');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="color-scheme" content="light dark" />
    <title>Deployments</title>
    <link rel="icon" href="data:," />
    ${style ? `<link rel="stylesheet" href="${style}" />` : ''}
    <script type="module" src="${script}"></script>
  </head>
  <body>
    <div id="app"></div>
    <noscript>The console needs JavaScript.</noscript>
  </body>
</html>
`;
}

async function gzipTextFiles(metafile: Metafile, extra: string[]): Promise<void> {
  const files = [...Object.keys(metafile.outputs).map((file) => join(pkg, file)), ...extra];
  for (const file of files) {
    if (!/\.(js|css|html|map|txt)$/.test(file)) continue;
    await writeFile(`${file}.gz`, gzipSync(await readFile(file), { level: 9 }));
  }
}

await main();
