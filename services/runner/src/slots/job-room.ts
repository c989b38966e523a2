import { mkdir } from 'node:fs/promises';
import { checkLocalPaths } from '@pds/shared';
import { fileURLToPath } from 'node:url';
import { chownTree, type Identity, openPathTo, ownFolder, runnerIdentity } from '../isolation/ownership.js';
import { resetSlot, slotFolder } from './slot-reset.js';
import { pulumiHomeIn } from '../isolation/slot-home.js';
import type { Slot } from './slots.js';
import { killProcessesOf } from '../isolation/uid-leases.js';
import { adoptSharedLayout, stackBackend } from '../isolation/stack-state.js';

/** Where a job's Pulumi processes work, and how the runner takes back what it handed them. */
export interface JobRoom {
  /** The slot's Pulumi home (its parent is the job's HOME). */
  pulumiHome: string;
  /** The backend URL of the job's stack (its own folder with a `file://` backend). */
  backendUrl: string;
  /** The folders handed to the slot's uid for the run (its stack's state, its local folders): a sandbox binds them. */
  handed: readonly string[];
  /** Takes back the stack's state and the job's local folders (owned by the runner between runs). */
  release(): Promise<void>;
}

export interface JobRoomSpec {
  workDir: string;
  backendUrl: string;
  stackFqdn: string;
  /** The stack's key (stackKeyOf): where its state folder is. */
  stackKey: string;
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
  const state = stackBackend(spec.backendUrl, spec.stackKey);
  const handed: string[] = [];
  try {
    await handOver(spec, state.dir, handed);
  } catch (err) {
    await takeBack(handed);
    throw err;
  }
  return {
    pulumiHome: pulumiHomeIn(slotFolder(spec.workDir, spec.slot)),
    backendUrl: state.url,
    handed,
    release: () => closeRoom(spec, handed),
  };
}

/**
 * After the run, with isolation: every process of the slot's uid is killed before the folders go
 * back to the runner, then the slot is reset for its next job (resetSlot).
 */
async function closeRoom(spec: JobRoomSpec, handed: string[]): Promise<void> {
  const { identity } = spec.slot;
  if (!identity) return takeBack(handed);
  try {
    try {
      // Sandboxed, the slot's cgroup holds every process of the job (nothing escapes it); else each
      // process of its uid, found in /proc.
      if (spec.slot.sandbox) await spec.slot.sandbox.kill();
      else await killProcessesOf(identity);
    } finally {
      await takeBack(handed);
    }
    await resetSlot(spec.workDir, { ...spec.slot, identity });
  } catch (err) {
    spec.slot.tainted = true; // not handed to another job until a clean-up succeeds
    throw err;
  }
}

/** Hands the stack's state folder and the job's local folders to the slot's uid; `handed` lists what was. */
async function handOver(spec: JobRoomSpec, stateDir: string | undefined, handed: string[]): Promise<void> {
  const { identity } = spec.slot;
  if (stateDir) {
    // State kept in the shared layout of earlier versions belongs to the default tenant (key = FQDN).
    if (spec.stackKey === spec.stackFqdn) await adoptSharedLayout(spec.backendUrl, spec.stackFqdn);
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
