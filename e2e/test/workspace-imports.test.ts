/**
 * Every workspace declares the packages its code imports. npm hoists all of them to the root, so an
 * undeclared import works here and breaks where a workspace is installed alone (an image's
 * production install, a package moved out): this reads every source and test file's imports
 * (static, re-exports, dynamic, type-only) and checks each against its own package.json.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '@pds/shared';
import t from 'tap';

interface Manifest {
  name: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')) as Manifest;

function workspaceDirs(): string[] {
  return (manifest('.').workspaces ?? [])
    .flatMap((entry) =>
      entry.endsWith('/*') ? readdirSync(join(repoRoot, entry.slice(0, -2))).map((d) => join(entry.slice(0, -2), d)) : [entry],
    )
    .filter((dir) => statSync(join(repoRoot, dir, 'package.json'), { throwIfNoEntry: false }));
}

/** The TypeScript files of a workspace, not what is built or installed; Pulumi programs under fixtures are the jobs' own. */
function sourceFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { recursive: true, encoding: 'utf8' }).filter(
    (file) => /\.(ts|tsx|mts)$/.test(file) && !file.endsWith('.d.ts') && !/(^|\/)(node_modules|dist|fixtures)\//.test(file),
  );
}

const IMPORT =
  /^\s*(?:import|export)\b[^'"`;]*?\bfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** The package each bare import names (`@scope/name` or `name`), skipping relative paths and Node's own modules. */
function importedPackages(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2] ?? match[3] ?? '';
    if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
    const parts = specifier.split('/');
    names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
  }
  return [...names];
}

t.test('the import reader finds every kind of import and skips what is not a package', async (t) => {
  const text = [
    "import t from 'tap';",
    "import type { WebSocket } from 'ws';",
    "import { a,\n  b } from '@scope/pkg/sub/path.js';",
    "export * from 'reexported';",
    "import 'side-effect';",
    // Spelled apart, or this file would import 'dynamic' itself in the reader's eyes.
    `const lazy = await ${'import'}('dynamic');`,
    "import { x } from './local.js';",
    "import { readFile } from 'node:fs/promises';",
    "import { join } from 'path';",
  ].join('\n');
  t.same(importedPackages(text).sort(), ['@scope/pkg', 'dynamic', 'reexported', 'side-effect', 'tap', 'ws']);
});

for (const dir of workspaceDirs()) {
  t.test(`${dir} declares what it imports`, async (t) => {
    const own = manifest(dir);
    const declared = new Set([own.name, ...Object.keys({ ...own.dependencies, ...own.devDependencies, ...own.peerDependencies })]);
    const undeclared = new Map<string, string>();
    for (const file of sourceFiles(dir)) {
      for (const name of importedPackages(readFileSync(join(repoRoot, dir, file), 'utf8'))) {
        if (!declared.has(name) && !undeclared.has(name)) undeclared.set(name, file);
      }
    }
    t.same(
      Object.fromEntries(undeclared),
      {},
      `every package ${dir}'s code imports is in its package.json (shown: the first file importing it)`,
    );
  });
}
