import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/**
 * The well-kept tools a sandbox is made of, by absolute path (a job's PATH never decides which
 * binary the runner runs as root): bubblewrap for the mount, PID, IPC and UTS namespaces,
 * slirp4netns for a job network's way out, util-linux for the rest.
 */
export interface SandboxTools {
  bwrap: string;
  slirp4netns: string;
  nsenter: string;
  unshare: string;
  setpriv: string;
  prlimit: string;
  mount: string;
  umount: string;
  ip: string;
  nft: string;
  sh: string;
}

/** Which Debian package brings each tool (said when one is missing). */
const PACKAGES: Record<keyof SandboxTools, string> = {
  bwrap: 'bubblewrap',
  slirp4netns: 'slirp4netns',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  setpriv: 'util-linux',
  prlimit: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  ip: 'iproute2',
  nft: 'nftables',
  sh: 'dash',
};

/** Finds every tool on PATH (and the sbin folders); answers the tools, or what is missing. */
export async function findSandboxTools(path = process.env.PATH ?? ''): Promise<SandboxTools | { missing: string[] }> {
  const folders = [...path.split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  const found: Partial<SandboxTools> = {};
  const missing: string[] = [];
  for (const name of Object.keys(PACKAGES) as (keyof SandboxTools)[]) {
    const file = await firstExecutable(folders.map((folder) => join(folder, name)));
    if (file) found[name] = file;
    else missing.push(`${name} (Debian package ${PACKAGES[name]})`);
  }
  return missing.length > 0 ? { missing } : (found as SandboxTools);
}

async function firstExecutable(candidates: string[]): Promise<string | undefined> {
  for (const file of candidates) {
    if (
      await access(file, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}
