/**
 * The figures issue #25 asked to track, measured from the source (`npm run code-health`): how many
 * files each lifecycle concept is spread over, the largest functions, imports across the runner's
 * folders (and folder pairs that import each other), casts on the job document, fixed sleeps and
 * silent catches in tests and services, and polling waits. Read, never asserted: a map, not a gate.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function tsFiles(dir: string): string[] {
  const abs = join(root, dir);
  if (!statSync(abs, { throwIfNoEntry: false })?.isDirectory()) return [];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.tsx?$/.test(name) && !name.endsWith('.d.ts'))
    .map((name) => join(dir, name));
}

const serviceSources = ['shared/src', 'services/api/src', 'services/runner/src', 'services/stream-gateway/src'].flatMap(tsFiles);
const testSources = [
  'shared/test',
  'services/api/test',
  'services/runner/test',
  'services/stream-gateway/test',
  'e2e/test',
  'cli/test',
].flatMap(tsFiles);
const read = (file: string) => readFileSync(join(root, file), 'utf8');

function filesMentioning(pattern: RegExp): number {
  return serviceSources.filter((file) => pattern.test(read(file))).length;
}

function count(files: string[], pattern: RegExp): number {
  return files.reduce((sum, file) => sum + (read(file).match(pattern)?.length ?? 0), 0);
}

interface FunctionSize {
  name: string;
  file: string;
  lines: number;
}

/** Every function-like node's length in lines (a function's inner functions count in its own length too). */
function functionSizes(files: string[]): FunctionSize[] {
  const sizes: FunctionSize[] = [];
  for (const file of files) {
    const source = ts.createSourceFile(file, read(file), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        const name = node.name && ts.isIdentifier(node.name) ? node.name.text : '(anonymous)';
        sizes.push({ name, file, lines: end - start + 1 });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return sizes.sort((a, b) => b.lines - a.lines);
}

/** Imports between the runner's folders (`src/` itself counts as one), and the folder pairs that import each other. */
function runnerFolderImports(): { crossing: number; mutualPairs: string[] } {
  const base = 'services/runner/src';
  const edges = new Map<string, number>();
  for (const file of tsFiles(base)) {
    const from = dirname(relative(base, file)) || '.';
    for (const match of read(file).matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      const target = relative(join(root, base), resolve(join(root, dirname(file)), match[1]!));
      const to = dirname(target) || '.';
      if (to !== from) edges.set(`${from}→${to}`, (edges.get(`${from}→${to}`) ?? 0) + 1);
    }
  }
  const mutualPairs = [...edges.keys()]
    .map((edge) => edge.split('→') as [string, string])
    .filter(([a, b]) => a < b && edges.has(`${b}→${a}`))
    .map(([a, b]) => `${a} ⇄ ${b}`);
  return { crossing: [...edges.values()].reduce((a, b) => a + b, 0), mutualPairs };
}

const sizes = functionSizes(serviceSources);
const folders = runnerFolderImports();
const figures: [string, string | number][] = [
  ['service and shared source files', serviceSources.length],
  ['files mentioning approval', filesMentioning(/approv/i)],
  ['files mentioning drift', filesMentioning(/drift/i)],
  ['files mentioning compensation', filesMentioning(/compensat/i)],
  [
    'largest functions (lines)',
    sizes
      .slice(0, 3)
      .map((s) => `${s.name} ${s.lines} (${s.file})`)
      .join('; '),
  ],
  ['functions over 80 lines', sizes.filter((s) => s.lines > 80).length],
  ['imports across the runner’s folders', folders.crossing],
  ['runner folder pairs importing each other', folders.mutualPairs.join(', ') || 'none'],
  [
    'casts of a job document’s free-form fields',
    count(serviceSources, /\.(?:options|approval|compensation|drift|usage|summary)\)?(?: \?\? \{\})?\)? as /g),
  ],
  ['fixed sleeps in tests', count(testSources, /setTimeout\(\s*\w+\s*,\s*\d|(?:sleep|delay)\(\s*\d/g)],
  ['`.catch(() => undefined)` in services and shared', count(serviceSources, /\.catch\(\(\) => undefined\)/g)],
  ['waitForJob call sites', count(testSources, /waitForJob\(/g) - 1],
];
const width = Math.max(...figures.map(([name]) => name.length));
for (const [name, value] of figures) console.log(`${name.padEnd(width)}  ${value}`);
