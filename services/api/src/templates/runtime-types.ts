import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
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

/** The answer of GET /v1/runtime/types, made once: its JSON, gzipped, and a tag of its content. */
export interface DeclarationsBody {
  json: string;
  gzip: Buffer;
  etag: string;
}

let cached: Promise<DeclarationsBody> | undefined;

/**
 * The runtime packages' type declarations and package.json files, for the template editor's
 * completion (GET /v1/runtime/types): read, serialised and compressed once per process (the
 * packages do not change under a running API), from the same packages the publish check compiles
 * against.
 */
export function runtimeDeclarations(): Promise<DeclarationsBody> {
  cached ??= collect().then(
    (files) => {
      const json = JSON.stringify({ files });
      return { json, gzip: gzipSync(json), etag: `"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"` };
    },
    (err: unknown) => {
      // Not kept: the next request reads the packages again.
      cached = undefined;
      throw err;
    },
  );
  return cached;
}

async function collect(): Promise<DeclarationFile[]> {
  const files: DeclarationFile[] = [];
  let bytes = 0;
  for (const pkg of runtimePackages()) {
    const manifest = JSON.parse(await readFile(join(pkg.dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    // What the editor's module resolution (node10) reads; `exports` is left out: the editor's
    // TypeScript would follow its conditions rather than `main` and find no declarations.
    const { name, version, main, types, typings } = manifest;
    files.push({
      path: `file:///node_modules/${pkg.name}/package.json`,
      content: JSON.stringify({ name, version, main, types, typings }),
    });
    for (const file of await declarationsUnder(pkg.dir)) {
      const content = await readFile(file, 'utf8');
      bytes += Buffer.byteLength(content);
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
