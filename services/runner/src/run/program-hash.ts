import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** The most files a program folder is hashed over; a larger one is not compared (undefined). */
const MAX_FILES = 5_000;

/**
 * The SHA-256 of a built-in template's program folder (every file's path and content, sorted;
 * `node_modules` left out: dependencies are pinned by the lockfile the image was built with). An
 * approved up compares it with its preview's: the same version number over changed code is a
 * change. Undefined for a folder past MAX_FILES.
 */
export async function programHash(dir: string): Promise<string | undefined> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((path) => !path.split(sep).includes('node_modules'))
    .sort();
  if (files.length > MAX_FILES) return undefined;
  const hash = createHash('sha256');
  for (const path of files)
    hash
      .update(`${path}\0`)
      .update(await readFile(join(dir, path)))
      .update('\0');
  return hash.digest('hex');
}
