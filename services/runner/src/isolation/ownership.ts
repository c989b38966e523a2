import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** A uid and gid a job's processes run as. */
export interface Identity {
  uid: number;
  gid: number;
}

/** Changes the owner of a folder and everything in it (links themselves, never their targets). */
export async function chownTree(dir: string, owner: Identity): Promise<void> {
  await lchown(dir, owner.uid, owner.gid);
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) await lchown(join(entry.parentPath, entry.name), owner.uid, owner.gid);
}

/**
 * Makes `dir` a folder of `owner` alone (0700), creating it (and, as the runner, its parents) if
 * needed, and hands over whatever it already holds. Parents are left as they are.
 */
export async function ownFolder(dir: string, owner: Identity): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Never through a link: what is handed over is this folder, not whatever a link points at.
  const found = await lstat(dir);
  if (!found.isDirectory()) throw new Error(`${dir} is not a folder (a link?): not handed over`);
  await chownTree(dir, owner);
  await chmod(dir, 0o700);
}

/**
 * Lets other users pass through (not list) every folder from `root` (excluded) down to `dir`'s
 * parent, creating the missing ones: a job's uid must reach its own folder inside a root that the
 * runner owns.
 */
export async function openPathTo(root: string, dir: string): Promise<void> {
  await mkdir(root, { recursive: true });
  let current = root;
  const parts = relative(root, dir).split(sep).slice(0, -1);
  for (const part of parts) {
    current = join(current, part);
    let existing = await lstat(current).catch(() => undefined);
    if (!existing) {
      // Another runner (a job starting beside this one) may make it first: then it is looked at as found.
      const made = await mkdir(current, { mode: 0o711 }).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
          return false;
        },
      );
      if (made) continue;
      existing = await lstat(current);
    }
    if (!existing.isDirectory()) throw new Error(`${current} is not a folder (a link?): refusing to open a path through it`);
    if ((existing.mode & 0o001) === 0) await chmod(current, (existing.mode & 0o7777) | 0o011);
  }
}

/**
 * Reads a file that a job's uid could have touched (in its workspace), as the runner: never through
 * a link (O_NOFOLLOW), only a regular file with one name (no FIFO, device or hard link to another
 * file), at most `maxBytes`. Anything else is an error naming why.
 */
export async function readJobFile(path: string, maxBytes: number): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const found = await file.stat();
    if (!found.isFile() || found.nlink !== 1) throw new Error(`${path} is not a plain file of its own`);
    if (found.size > maxBytes) throw new Error(`${path} is ${found.size} bytes, more than ${maxBytes}`);
    const buffer = Buffer.alloc(found.size);
    const { bytesRead } = await file.read(buffer, 0, found.size, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await file.close();
  }
}

/** The runner's own identity (what folders are taken back to). */
export function runnerIdentity(): Identity {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}
