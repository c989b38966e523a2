import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, isFinalStatus, type JobStatus, localFilesRoot, type Logger, type Models } from '@pds/shared';
import { PROGRAM_HOST } from '../pulumi/program-host-pool.js';
import { isolationProblem, type SlotPool } from './slots.js';
import { resetSlot } from './slot-reset.js';
import { type FleetLeases, killProcessesOf, leaseUids, type UidLease } from '../isolation/uid-leases.js';
import { openSlotSandboxes, type SandboxConfig, sandboxSettings } from '../sandbox/prepare-sandbox.js';
import type { SlotSandbox } from '../sandbox/slot-sandbox.js';

/** Raised when isolation is asked for and the runner cannot give it: the runner refuses to start. */
export class IsolationUnavailableError extends Error {
  override name = 'IsolationUnavailableError';
}

/** The runner's scratch folders; other users may pass through them (0711), never list them. */
function scratchFolders(workDir: string): string[] {
  return [workDir, join(workDir, 'jobs'), join(workDir, 'secrets'), join(workDir, 'slots')];
}

/** How a runner isolates its jobs: the level it runs at, its uids, and each slot uid's sandbox. */
export interface Isolation {
  level: 'sandbox' | 'uid' | 'none';
  lease?: UidLease;
  sandboxes?: Map<number, SlotSandbox>;
}

/** What RUNNER_ISOLATION=uid leaves open, said at start. */
const UID_ONLY_WARNING =
  "RUNNER_ISOLATION=uid: jobs run as uids of their own but share the runner's network (they can connect to its Redis, its store, the API, every port on the machine's loopback, each other's program hosts, the cloud metadata address), see every process of the machine in /proc, and have no memory, CPU, process or disk limits: one job can starve the others. Use only where the kernel or the platform gives no namespaces or cgroups.";

/**
 * Checks that jobs can run isolated (a slot uid can run Node, the Pulumi CLI and the program host,
 * and reach the runner's folders), leases the slots' uids (across the fleet with `fleet`), and gets
 * the folders ready. Answers the
 * lease, or undefined with RUNNER_ISOLATION=none (said loudly). Throws IsolationUnavailableError
 * when isolation is asked for but cannot be had: a runner never quietly runs jobs as itself.
 */
export async function prepareIsolation(
  config: Pick<Config, 'RUNNER_ISOLATION' | 'RUNNER_UID_BASE' | 'RUNNER_UID_COUNT' | 'RUNNER_CONCURRENCY'> & SandboxConfig,
  logger: Pick<Logger, 'warn' | 'info'>,
  fleet?: FleetLeases,
): Promise<Isolation> {
  for (const dir of scratchFolders(config.WORK_DIR)) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o711);
  }
  if (config.RUNNER_ISOLATION === 'none') {
    logger.warn(
      "RUNNER_ISOLATION=none: jobs run as the runner's own user; a job's program can read the runner's environment and files and other jobs' workspaces, credential files and state. Use only where the runner cannot switch users.",
    );
    return { level: 'none' };
  }
  const settings = config.RUNNER_ISOLATION === 'sandbox' ? await sandboxSettings(config) : undefined;
  if (settings && 'problem' in settings) {
    throw new IsolationUnavailableError(
      `RUNNER_ISOLATION=sandbox, but ${settings.problem}. Fix that (docs/operations.md, "Job sandbox"), or set RUNNER_ISOLATION=uid to run jobs as uids of their own without namespaces or limits (unsafe: a job's program could then reach the service's Redis and store and every other port of the machine, and starve other jobs).`,
    );
  }
  if (!settings) logger.warn(UID_ONLY_WARNING);
  const state = config.PULUMI_BACKEND_URL.startsWith('file://') ? fileURLToPath(config.PULUMI_BACKEND_URL) : undefined;
  if (state) {
    await mkdir(state, { recursive: true });
    await chmod(state, 0o711);
  }
  // The root local-file kinds write under: jobs pass through it to the folders handed to them.
  await mkdir(localFilesRoot(config), { recursive: true });
  const lease = await leaseUids(config.RUNNER_UID_BASE, config.RUNNER_UID_COUNT, config.RUNNER_CONCURRENCY, fleet);
  const [first] = lease.uids as [number];
  const problem = await isolationProblem(
    { uid: first, gid: first },
    {
      read: [PROGRAM_HOST, config.MODULES_DIR],
      execute: [
        ...(isAbsolute(config.PULUMI_BIN) ? [config.PULUMI_BIN] : []),
        config.WORK_DIR,
        localFilesRoot(config),
        ...(state ? [state] : []),
      ],
    },
  );
  if (problem) {
    await lease.release();
    throw new IsolationUnavailableError(
      `RUNNER_ISOLATION=${config.RUNNER_ISOLATION}, but ${problem}. Fix that, or set RUNNER_ISOLATION=none to run jobs as the runner's own user (unsafe: a job's program could then read the runner's environment and other jobs' files).`,
    );
  }
  let sandboxes: Map<number, SlotSandbox> | undefined;
  try {
    sandboxes = settings ? await openSlotSandboxes(settings, lease.uids, logger) : undefined;
    // A runner that died may have left processes and files of these uids (no other process holds them now).
    for (const [index, uid] of lease.uids.entries()) {
      await resetSlot(config.WORK_DIR, { index, identity: { uid, gid: uid }, sandbox: sandboxes?.get(uid) });
    }
  } catch (err) {
    await Promise.all([...(sandboxes?.values() ?? [])].map((s) => s.close()));
    await lease.release();
    throw err;
  }
  if (sandboxes) {
    logger.info(
      { uids: lease.uids, egressAllow: config.JOB_EGRESS_ALLOW || 'none' },
      "jobs run sandboxed: each as its slot's own uid, in namespaces of its own (network, PID, IPC, mount) and within its slot's cgroup limits",
    );
  } else logger.info({ uids: lease.uids }, "jobs run isolated, each as its runner slot's own uid");
  return { level: sandboxes ? 'sandbox' : 'uid', lease, sandboxes };
}

/**
 * Removes job folders and credential files left by runs that are over (a runner that died cannot
 * clean up after itself). Folders of jobs still running, in this process or another sharing
 * WORK_DIR, stay.
 */
export async function sweepLeftovers(workDir: string, models: Pick<Models, 'StackJob'>, logger: Pick<Logger, 'info'>): Promise<number> {
  let removed = 0;
  for (const kind of ['jobs', 'secrets']) {
    const dir = join(workDir, kind);
    for (const jobId of await readdir(dir).catch(() => [] as string[])) {
      const job = await models.StackJob.findById(jobId, { status: 1 }).lean<{ status: JobStatus }>();
      if (job && !isFinalStatus(job.status)) continue;
      await rm(join(dir, jobId), { recursive: true, force: true });
      removed++;
    }
  }
  // Template program folders half-written by a runner that died, an hour ago or more (another runner
  // sharing WORK_DIR may be writing one now; whole ones stay: runs share them).
  const templates = join(workDir, 'templates');
  for (const name of await readdir(templates).catch(() => [] as string[])) {
    if (!name.startsWith('.tmp-')) continue;
    const { mtimeMs } = await stat(join(templates, name)).catch(() => ({ mtimeMs: Date.now() }));
    if (Date.now() - mtimeMs < 3600_000) continue;
    await rm(join(templates, name), { recursive: true, force: true });
    removed++;
  }
  if (removed > 0) logger.info({ removed }, 'removed job folders, credential files and template folders left by earlier runs');
  return removed;
}

/**
 * Keeps the slot uids this runner's alone across the fleet (renewed each beat): a uid another
 * runner took (its lease ran out) is withheld from the pool and its sandbox closed.
 */
export function renewUidLease(isolation: Isolation | undefined, slots: Pick<SlotPool, 'withhold'> | undefined, log: Logger): void {
  isolation?.lease
    ?.renew()
    .then((lost) => {
      for (const uid of lost) {
        slots?.withhold(uid);
        // Its network and cgroup go too; one that does not close is swept when a runner starts again.
        void isolation.sandboxes
          ?.get(uid)
          ?.close()
          .catch((err: Error) => log.warn({ err: err.message, uid }, 'the sandbox of a lost slot uid could not be closed'));
        log.error({ uid }, 'another runner holds this slot uid now (its lease ran out): the slot is no longer used');
      }
    })
    .catch((err: Error) => log.debug({ err: err.message }, 'slot uid lease not renewed this time')); // it outlives a few missed renewals
}

/** At shutdown: the slots' sandboxes closed, every process of their uids stopped, the uids given back to the fleet. */
export async function releaseIsolation(isolation: Isolation | undefined, log: Logger): Promise<void> {
  const uidLease = isolation?.lease;
  if (!uidLease) return;
  const uids = uidLease.uids;
  await Promise.all([...(isolation.sandboxes?.values() ?? [])].map((sandbox) => sandbox.close())).catch((err: Error) =>
    log.warn({ err: err.message, uids }, 'could not close every slot sandbox'),
  );
  await Promise.all(uids.map((uid) => killProcessesOf({ uid, gid: uid }))).catch((err: Error) =>
    log.warn({ err: err.message, uids }, 'could not stop every process of the slot uids'),
  );
  await uidLease.release();
}
