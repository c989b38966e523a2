import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { runtimePackages } from '@pds/shared';

export interface DeclarationFile {
  /** Where the editor's TypeScript finds it: `file:///node_modules/<package>/<path>`. */
  path: string;
  content: string;
}

/** Folders of a runtime package whose declarations a program does not import (generated gRPC code, vendored TypeScript). */
const SKIPPED = new Set(['node_modules', 'proto', 'vendor', 'cmd']);
/** The declarations served at most (the runtime packages' are ~0.9 MiB). */
const MAX_BYTES = 4 * 1024 * 1024;

let cached: Promise<DeclarationFile[]> | undefined;

/**
 * The runtime packages' type declarations and package.json files, for the template editor's
 * completion (GET /v1/runtime/types): read once per process, from the same packages the publish
 * check compiles against.
 */
export function runtimeDeclarations(): Promise<DeclarationFile[]> {
  cached ??= collect().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function collect(): Promise<DeclarationFile[]> {
  const files: DeclarationFile[] = [];
  let bytes = 0;
  for (const pkg of runtimePackages()) {
    const manifest = JSON.parse(await readFile(join(pkg.dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    const { name, version, types, typings, exports } = manifest;
    files.push({
      path: `file:///node_modules/${pkg.name}/package.json`,
      content: JSON.stringify({ name, version, types, typings, exports }),
    });
    for (const file of await declarationsUnder(pkg.dir)) {
      const content = await readFile(file, 'utf8');
      bytes += content.length;
      if (bytes > MAX_BYTES) throw new Error(`the runtime packages' declarations pass ${MAX_BYTES} bytes`);
      files.push({ path: `file:///node_modules/${pkg.name}/${relative(pkg.dir, file)}`, content });
    }
  }
  return files;
}

async function declarationsUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !SKIPPED.has(entry.name)) found.push(...(await declarationsUnder(path)));
    else if (entry.isFile() && entry.name.endsWith('.d.ts')) found.push(path);
  }
  return found.sort();
}
