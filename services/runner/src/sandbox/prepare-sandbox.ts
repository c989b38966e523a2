import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, localFilesRoot, type Logger, repoRoot, SECRET_SETTINGS } from '@pds/shared';
import type { Identity } from '../isolation/ownership.js';
import { uidFreeOnMachine } from '../isolation/uid-leases.js';
import { detectCgroups, SlotCgroup, strayGroups } from './cgroups.js';
import { parseEgressAllow } from './egress.js';
import { PRIVATE_TEMP } from './command.js';
import { removeStrayNetworks } from './slot-network.js';
import { SlotSandbox, type SandboxSettings } from './slot-sandbox.js';
import { findSandboxTools } from './tools.js';

const MIB = 1024 * 1024;

/** The settings a runner's sandboxes are made from. */
export type SandboxConfig = Pick<
  Config,
  | 'WORK_DIR'
  | 'PULUMI_BACKEND_URL'
  | 'LOCAL_FILES_ROOT'
  | 'JOB_EGRESS_ALLOW'
  | 'JOB_TMP_MAX_MB'
  | 'JOB_DISK_MAX_MB'
  | 'RUNNER_SANDBOX_DIR'
  | 'PULUMI_BIN'
  | 'MODULES_DIR'
>;

/**
 * What a job's processes run that may lie in a folder the sandbox makes private (a checkout in
 * /tmp): the service's own files (the program host, node_modules, the modules), the Pulumi CLI and
 * Node. Bound back read-only, and only those inside a private folder (elsewhere the read-only system
 * shows them).
 */
function serviceFiles(config: Pick<Config, 'PULUMI_BIN' | 'MODULES_DIR'>): string[] {
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return path;
    }
  };
  const candidates = [
    repoRoot,
    config.MODULES_DIR,
    dirname(process.execPath),
    ...(isAbsolute(config.PULUMI_BIN) ? [dirname(real(config.PULUMI_BIN))] : []),
  ];
  return [...new Set(candidates.map((path) => real(path).replace(/\/+$/, '')))].filter((path) =>
    PRIVATE_TEMP.some((temp) => path.startsWith(`${temp}${sep}`)),
  );
}

/**
 * What a runner's sandboxes need from the machine (the tools, cgroups it may make, its settings), or
 * why they cannot be had: said at start, and the runner refuses to start (RUNNER_ISOLATION=uid
 * must then be chosen explicitly).
 */
export async function sandboxSettings(config: SandboxConfig): Promise<SandboxSettings | { problem: string }> {
  if (process.platform !== 'linux') return { problem: 'namespaces and cgroups are Linux features' };
  if (process.getuid?.() !== 0) return { problem: 'the runner is not root (it makes network namespaces and cgroups for its slots)' };
  const tools = await findSandboxTools();
  if ('missing' in tools) return { problem: `these tools are missing: ${tools.missing.join(', ')}` };
  const cgroups = await detectCgroups();
  if ('problem' in cgroups) return { problem: `job limits cannot be set: ${cgroups.problem}` };
  let egressAllow: string[];
  try {
    egressAllow = parseEgressAllow(config.JOB_EGRESS_ALLOW);
  } catch (err) {
    return { problem: (err as Error).message };
  }
  const stateRoot = config.PULUMI_BACKEND_URL.startsWith('file://') ? [fileURLToPath(config.PULUMI_BACKEND_URL)] : [];
  return {
    tools,
    cgroups,
    dir: config.RUNNER_SANDBOX_DIR,
    egressAllow,
    serviceFiles: serviceFiles(config),
    hidden: [config.WORK_DIR, ...stateRoot, localFilesRoot(config), config.RUNNER_SANDBOX_DIR],
    // Mounted secrets are often readable by all (0444, 0644): no job reads the runner's.
    hiddenFiles: SECRET_SETTINGS.flatMap((name) => process.env[`${name}_FILE`] ?? []),
    tmpBytes: config.JOB_TMP_MAX_MB * MIB,
    fileBytes: config.JOB_DISK_MAX_MB * MIB,
  };
}

/**
 * Opens a sandbox for each slot uid, after removing what runners that died on this machine left:
 * the cgroups of uids no runner here holds now are killed whole (a job's dynamic provider included).
 */
export async function openSlotSandboxes(
  settings: SandboxSettings,
  uids: readonly number[],
  logger: Pick<Logger, 'info'>,
): Promise<Map<number, SlotSandbox>> {
  const isStray = async (uid: number) => Number.isInteger(uid) && !uids.includes(uid) && (await uidFreeOnMachine(uid));
  const stray = await strayGroups(settings.cgroups, (name) => isStray(Number(/^uid-(\d+)$/.exec(name)?.[1])));
  for (const name of stray) await new SlotCgroup(settings.cgroups, name).remove();
  const networks = await removeStrayNetworks(settings.tools, settings.dir, isStray);
  if (stray.length + networks.length > 0) logger.info({ groups: stray, networks }, 'removed what runners that died left of their slots');
  const sandboxes = new Map<number, SlotSandbox>();
  try {
    for (const uid of uids) {
      const identity: Identity = { uid, gid: uid };
      sandboxes.set(uid, await SlotSandbox.open(settings, identity));
    }
  } catch (err) {
    await Promise.all([...sandboxes.values()].map((s) => s.close()));
    throw err;
  }
  return sandboxes;
}
