import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Identity } from '../isolation/ownership.js';
import { type MountView, sandboxedCommand, type SlotSpec } from './command.js';
import { type CgroupLayout, type JobLimits, SlotCgroup, type SlotUsage } from './cgroups.js';
import { type Cidr, SLIRP_DNS } from './egress.js';
import { SlotNetwork } from './slot-network.js';
import type { SandboxTools } from './tools.js';

/** What every slot sandbox of a runner shares. */
export interface SandboxSettings {
  tools: SandboxTools;
  cgroups: CgroupLayout;
  /** Where the slots' network namespaces are bound (a private mount point, root's only). */
  dir: string;
  egressAllow: Cidr[];
  /** The service's own files that lie in a private temp folder, bound back read-only (prepare-sandbox). */
  serviceFiles: string[];
  /** Folders no job sees but its own parts of (WORK_DIR, the state root, LOCAL_FILES_ROOT, `dir`). */
  hidden: string[];
  /** Files no job reads (the runner's NAME_FILE secrets). */
  hiddenFiles: string[];
  tmpBytes: number;
  fileBytes: number;
}

/**
 * One runner slot's sandbox: its network namespace and cgroup, kept for the slot's life, and the
 * command lines that run a job's processes inside them as the slot's uid (docs/security.md).
 */
export class SlotSandbox {
  /** The largest file a process of the slot may write: the job's disk limit once set. */
  private fileBytes: number;

  private constructor(
    private readonly settings: SandboxSettings,
    readonly identity: Identity,
    private readonly network: SlotNetwork,
    private readonly cgroup: SlotCgroup,
    private readonly resolvConf: string,
  ) {
    this.fileBytes = settings.fileBytes;
  }

  static async open(settings: SandboxSettings, identity: Identity): Promise<SlotSandbox> {
    const resolvConf = join(settings.dir, 'resolv.conf');
    await mkdir(settings.dir, { recursive: true, mode: 0o700 });
    await writeFile(resolvConf, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
    const cgroup = new SlotCgroup(settings.cgroups, `uid-${identity.uid}`);
    await cgroup.reset();
    let network: SlotNetwork;
    try {
      network = await SlotNetwork.open(settings.tools, settings.dir, identity.uid, settings.egressAllow);
    } catch (err) {
      await cgroup.remove();
      throw err;
    }
    return new SlotSandbox(settings, identity, network, cgroup, resolvConf);
  }

  private get spec(): SlotSpec {
    return {
      tools: this.settings.tools,
      identity: this.identity,
      netnsPath: this.network.path,
      procsFiles: this.cgroup.procsFiles,
      serviceFiles: this.settings.serviceFiles,
      hidden: this.settings.hidden,
      hiddenFiles: this.settings.hiddenFiles,
      resolvConf: this.resolvConf,
      tmpBytes: this.settings.tmpBytes,
      fileBytes: this.fileBytes,
    };
  }

  /** The command line that runs `file args` in this slot's sandbox with `view` of the folders. */
  command(view: MountView, file: string, args: readonly string[]): { file: string; args: string[] } {
    return sandboxedCommand(this.spec, view, file, args);
  }

  /** Sets a job's limits (before its first process): its cgroup's, and the largest file it may write. */
  limit(limits: JobLimits & { diskBytes: number }): Promise<void> {
    this.fileBytes = limits.diskBytes;
    return this.cgroup.limit(limits);
  }

  usage(): Promise<SlotUsage> {
    return this.cgroup.usage();
  }

  /** Kills everything the slot runs (nothing escapes a cgroup) and starts its counters anew. */
  reset(): Promise<void> {
    this.fileBytes = this.settings.fileBytes; // a job's own limit ends with it
    return this.cgroup.reset();
  }

  /** Kills everything the slot runs without starting it anew. */
  kill(): Promise<void> {
    return this.cgroup.kill();
  }

  async close(): Promise<void> {
    await this.cgroup.remove().catch(() => undefined);
    await this.network.close();
  }
}
