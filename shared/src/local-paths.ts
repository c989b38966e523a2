import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { errors } from './errors.js';

/** Whether `path` is `root` or inside it (both absolute and normalised). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Checks the spec fields a kind declares as local paths (`localPaths` in module.yaml): each must be
 * an absolute, normalised path inside `root` (LOCAL_FILES_ROOT), and no part of it that exists may
 * be a symbolic link (checked with lstat from the root down, the root itself by its realpath), so
 * a manifest cannot point a program at the service's own files. Throws a 400 naming the field.
 */
export async function checkLocalPaths(fields: readonly string[], spec: Record<string, unknown>, root: string): Promise<void> {
  const realRoot = await realpath(root).catch(() => normalize(root));
  for (const field of fields) {
    const value = spec[field];
    const name = `spec.${field}`;
    if (typeof value !== 'string' || !isAbsolute(value)) throw errors.invalidManifest(`${name} must be an absolute path`);
    const path = normalize(value).replace(/(.)\/+$/, '$1');
    if (path !== value.replace(/(.)\/+$/, '$1')) throw errors.invalidManifest(`${name} must be a normalised path (no ".", ".." or "//")`);
    const inside = isInside(root, path) ? relative(root, path) : isInside(realRoot, path) ? relative(realRoot, path) : undefined;
    if (inside === undefined) throw errors.invalidManifest(`${name} must be inside ${root} (LOCAL_FILES_ROOT)`);
    if (inside === '') throw errors.invalidManifest(`${name} must be a folder inside ${root} (LOCAL_FILES_ROOT), not the root itself`);
    let current = realRoot;
    for (const part of inside.split(sep)) {
      current = join(current, part);
      const stats = await lstat(current).catch(() => undefined);
      if (!stats) break;
      if (stats.isSymbolicLink()) throw errors.invalidManifest(`${name}: ${current} is a symbolic link; links are refused`);
      if (!stats.isDirectory()) throw errors.invalidManifest(`${name}: ${current} is not a directory`);
    }
  }
}

/** The local folders a manifest's spec names (a kind's `localPaths`), without trailing slashes. */
export function localDirsOf(fields: readonly string[], spec: Record<string, unknown>): string[] {
  return fields
    .map((field) => spec[field])
    .filter((dir): dir is string => typeof dir === 'string')
    .map((dir) => dir.replace(/(.)\/+$/, '$1'));
}

/** Whether two folders are the same or one holds the other. */
export function foldersNest(a: string, b: string): boolean {
  return isInside(a, b) || isInside(b, a);
}

/** The folder under LOCAL_FILES_ROOT that holds the local folders of tenants other than the default one. */
export const TENANTS_FILES_DIR = 'tenants';

/**
 * Where a tenant's local folders live: LOCAL_FILES_ROOT itself for the default tenant (as before
 * tenants existed), `<root>/tenants/<tenant>` for any other, so that no tenant can take, nest with or
 * probe another's folders.
 */
export function tenantFilesRoot(root: string, tenant: string): string {
  return tenant === 'default' ? root : join(root, TENANTS_FILES_DIR, tenant);
}
