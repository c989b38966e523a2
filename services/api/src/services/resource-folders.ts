import { realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  checkLocalPaths,
  DEFAULT_TENANT,
  errors,
  foldersNest,
  isInside,
  type KindRegistry,
  localDirsOf,
  type Models,
  parseManifest,
  type ResourceDoc,
  STORED_MANIFEST,
  TENANTS_FILES_DIR,
  tenantFilesRoot,
  tenantOf,
} from '@pds/shared';

/** Where a resource's local folders may be: its tenant's own area, never shared with or nested in another resource's. */
export function resourceFolders({ models, kinds, localFilesRoot }: { models: Models; kinds: KindRegistry; localFilesRoot: string }) {
  /**
   * Two resources never share or nest their local folders: each stack's run hands its folder to its
   * own uid, and a folder inside another's could be swapped for a link while the other is handed
   * over. Compared with every resource of a kind that has local folders (a 409 naming the other).
   */
  async function assertOwnFolders(dirs: string[], self: { tenantId: string; kind: string; name: string }): Promise<void> {
    if (dirs.length === 0) return;
    // A folder may be written through the root as configured or through its real path: compare one form.
    const realRoot = await realpath(localFilesRoot).catch(() => localFilesRoot);
    const canonical = (dir: string) =>
      !isInside(localFilesRoot, dir) && isInside(realRoot, dir) ? join(localFilesRoot, relative(realRoot, dir)) : dir;
    const local = [...kinds.entries()].filter(([, k]) => k.localPaths.length > 0);
    // Every tenant's: the folders are on one file system, whoever owns them.
    const others = await models.Resource.find(
      { kind: { $in: local.map(([name]) => name) } },
      { tenantId: 1, kind: 1, name: 1, manifest: 1 },
    ).lean<Pick<ResourceDoc, '_id' | 'tenantId' | 'kind' | 'name' | 'manifest'>[]>();
    for (const other of others) {
      // Itself (a replacement), or its namesake (a duplicate name is refused as such when stored).
      if (tenantOf(other) === self.tenantId && other.kind === self.kind && other.name === self.name) continue;
      const fields = kinds.get(other.kind)?.localPaths ?? [];
      const theirs = localDirsOf(fields, parseManifest(other.manifest, STORED_MANIFEST).spec);
      for (const dir of dirs) {
        const mine = canonical(dir);
        const clash = theirs.find((their) => foldersNest(mine, canonical(their)));
        if (clash) {
          // Another tenant's resource is not named: existence does not leak across tenants.
          const whose =
            tenantOf(other) === self.tenantId ? `the folder of ${other.kind} ${other.name} (${clash})` : "another tenant's folder";
          throw errors.conflict(
            `spec.directory ${dir} ${dir === clash ? 'is' : 'nests with'} ${whose}: two resources never share or nest their local folders`,
          );
        }
      }
    }
  }

  /**
   * A tenant's local folders are inside its own root (tenantFilesRoot); the default tenant's, inside
   * LOCAL_FILES_ROOT but out of the other tenants' area.
   */
  async function checkTenantPaths(fields: string[], spec: Record<string, unknown>, tenantId: string): Promise<void> {
    const root = tenantFilesRoot(localFilesRoot, tenantId);
    await checkLocalPaths(fields, spec, root);
    if (tenantId !== DEFAULT_TENANT) return;
    const area = join(localFilesRoot, TENANTS_FILES_DIR);
    const realArea = join(await realpath(localFilesRoot).catch(() => localFilesRoot), TENANTS_FILES_DIR);
    for (const dir of localDirsOf(fields, spec)) {
      if (foldersNest(area, dir) || foldersNest(realArea, dir)) {
        throw errors.invalidManifest(`spec.directory ${dir}: ${area} holds the folders of the other tenants`);
      }
    }
  }

  return { assertOwnFolders, checkTenantPaths };
}
