import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { runtimePackages, type TemplateFile, type TemplateVersionDoc } from '@pds/shared';

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/**
 * The folder an uploaded template version runs from: `WORK_DIR/templates/<sha256>`, its compiled
 * files plus a node_modules that holds only the runtime packages (links to the runner's own). Written
 * once per content hash (a published version never changes), into a temporary folder renamed into
 * place, so that runs of one version on many slots share it and never see it half-written.
 * Readable by every slot uid (0755 / 0644), writable by the runner only.
 */
export async function templateProgramDir(
  workDir: string,
  version: Pick<TemplateVersionDoc, 'sha256'>,
  /** Reads the compiled files (up to 1 MiB), only when this machine has not written them yet. */
  readCompiled: () => Promise<TemplateFile[]>,
): Promise<string> {
  if (!version.sha256 || !/^[0-9a-f]{64}$/.test(version.sha256))
    throw new Error('the template version has not been checked (no content hash)');
  const root = join(workDir, 'templates');
  const dir = join(root, version.sha256);
  if (await exists(join(dir, 'package.json'))) return dir;
  const compiled = await readCompiled();
  await mkdir(root, { recursive: true });
  await chmod(root, 0o711);
  const temp = join(root, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(temp, { mode: 0o755 });
    for (const file of compiled) {
      // Paths were checked when uploaded; checked again, since this writes outside the store.
      if (posix.isAbsolute(file.path) || posix.normalize(file.path) !== file.path || file.path.split('/').includes('..')) {
        throw new Error(`the template version holds a file outside its folder: ${file.path}`);
      }
      const target = join(temp, file.path);
      await mkdir(dirname(target), { recursive: true, mode: 0o755 });
      await writeFile(target, file.content, { mode: 0o644 });
    }
    await writeFile(join(temp, 'package.json'), `${JSON.stringify({ name: 'template-program', private: true })}\n`, { mode: 0o644 });
    for (const pkg of runtimePackages()) {
      const link = join(temp, 'node_modules', pkg.name);
      await mkdir(dirname(link), { recursive: true, mode: 0o755 });
      await symlink(pkg.dir, link, 'dir');
    }
    await rename(temp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another slot wrote the same content first: theirs is as good as ours.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return dir;
}
