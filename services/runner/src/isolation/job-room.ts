import { mkdir, rm } from 'node:fs/promises';
import { checkLocalPaths } from '@pds/shared';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chownTree, type Identity, openPathTo, ownFolder, runnerIdentity } from './ownership.js';
import { type Slot, slotFolderName } from './slots.js';
import { killProcessesOf } from './uid-leases.js';
import { adoptSharedLayout, stackBackend } from './stack-state.js';

/** Where a job's Pulumi processes work, and how the runner takes back what it handed them. */
export interface JobRoom {
  /** The slot's Pulumi home (its parent is the job's HOME). */
  pulumiHome: string;
  /** The backend URL of the job's stack (its own folder with a `file://` backend). */
  backendUrl: string;
  /** Takes back the stack's state and the job's local folders (owned by the runner between runs). */
  release(): Promise<void>;
}

export interface JobRoomSpec {
  workDir: string;
  backendUrl: string;
  stackFqdn: string;
  slot: Slot;
  /** Folders on this machine the job's program writes (a kind's `localPaths`), inside `localRoot`. */
  localDirs: string[];
  localRoot: string;
}

/**
 * Gets a job's room ready. With isolation (the slot has a uid): the stack's state folder and the
 * job's local folders are handed to the slot's uid for the run (0700), so the job reaches its own
 * stack's state and no other; `release` gives them back to the runner. Without isolation nothing
 * changes hands. The caller holds the stack's lock.
 */
export async function openJobRoom(spec: JobRoomSpec): Promise<JobRoom> {
  const state = stackBackend(spec.backendUrl, spec.stackFqdn);
  const handed: string[] = [];
  try {
    await handOver(spec, state.dir, handed);
  } catch (err) {
    await takeBack(handed);
    throw err;
  }
  const slotDir = join(spec.workDir, 'slots', slotFolderName(spec.slot));
  return {
    pulumiHome: join(slotDir, 'pulumi-home'),
    backendUrl: state.url,
    release: () => closeRoom(spec.slot.identity, handed, slotDir),
  };
}

/**
 * After the run, with isolation: every process of the slot's uid is killed (nothing the program
 * left behind waits for the slot's next job), the folders go back to the runner, and the slot's
 * home starts empty again (nothing planted in it, such as a plugin, reaches the next job).
 */
async function closeRoom(identity: Identity | undefined, handed: string[], slotDir: string): Promise<void> {
  if (!identity) return takeBack(handed);
  try {
    await killProcessesOf(identity);
  } finally {
    await takeBack(handed);
  }
  await rm(slotDir, { recursive: true, force: true });
  await mkdir(join(slotDir, 'pulumi-home'), { recursive: true, mode: 0o700 });
  await ownFolder(slotDir, identity);
}

/** Hands the stack's state folder and the job's local folders to the slot's uid; `handed` lists what was. */
async function handOver(spec: JobRoomSpec, stateDir: string | undefined, handed: string[]): Promise<void> {
  const { identity } = spec.slot;
  if (stateDir) {
    await adoptSharedLayout(spec.backendUrl, spec.stackFqdn);
    await openPathTo(fileURLToPath(spec.backendUrl), stateDir);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    if (identity) {
      await ownFolder(stateDir, identity);
      handed.push(stateDir);
    }
  }
  if (identity) {
    for (const dir of spec.localDirs) {
      // Checked again here, on the runner's own disk (the API's check ran on the API's): inside the
      // root, normalised, no link on the way.
      await checkLocalPaths(['directory'], { directory: dir }, spec.localRoot);
      await openPathTo(spec.localRoot, dir);
      await ownFolder(dir, identity);
      handed.push(dir);
    }
  }
}

/** Gives folders back to the runner; a folder that cannot be taken back is an error, not a shrug. */
async function takeBack(dirs: string[], owner: Identity = runnerIdentity()): Promise<void> {
  const results = await Promise.allSettled(dirs.map((dir) => chownTree(dir, owner)));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${dirs[i]}: ${(r.reason as Error).message}`] : []));
  if (failed.length > 0) throw new Error(`could not take back from the job's uid: ${failed.join('; ')}`);
}
