import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** What one job may use at most (docs/security.md, Limits). */
export interface JobLimits {
  memoryBytes: number;
  /** CPU time per wall second, in cores (a quota: 2 is two cores' worth). */
  cpus: number;
  /** Processes and threads at once (pids.max). */
  pids: number;
}

/** What a slot's processes used since the slot was last reset (its job, and the program host warmed for it). */
export interface SlotUsage {
  peakMemoryBytes?: number;
  cpuSeconds?: number;
  /** Processes the kernel killed for want of memory. */
  oomKills: number;
  /** Forks refused at pids.max. */
  forksRefused: number;
}

/** The folder, under the runner's own cgroup, that holds its slots' groups. */
const SLOTS_FOLDER = 'pulumi-deploy';
const V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

/**
 * Where slot groups are made: cgroup v2 (one hierarchy, `unified`), or v1 (one folder per
 * controller; `unified` too where the hybrid layout mounts cgroup2, for `cgroup.kill`).
 */
export type CgroupLayout = { version: 2; unified: string } | { version: 1; v1: Record<V1Controller, string>; unified?: string };

/** The mount points of cgroup hierarchies, from /proc/self/mountinfo: cgroup2's, and each v1 controller's. */
function mountPoints(mountinfo: string): { unified?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4] ?? '';
    const [fsType, , superOptions = ''] = right.split(' ');
    if (fsType === 'cgroup2') unified ??= mountPoint;
    if (fsType === 'cgroup') for (const option of superOptions.split(',')) v1.set(option, mountPoint);
  }
  return { unified, v1 };
}

/** This process's path in each hierarchy, from /proc/self/cgroup ('' keys cgroup2). */
function ownPaths(selfCgroup: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of selfCgroup.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers = '', path = '/'] = match;
    if (controllers === '') paths.set('', path);
    for (const controller of controllers.split(',')) paths.set(controller.replace(/^name=/, ''), path);
  }
  return paths;
}

/**
 * Finds where this runner can make its slots' groups, each limited on memory, processes and CPU:
 * under its own cgroup (v2, or v1 where memory and pids are v1 controllers). Answers the reason
 * when it cannot, to be said at start.
 */
export async function detectCgroups(): Promise<CgroupLayout | { problem: string }> {
  const [mountinfo, selfCgroup] = await Promise.all([readFile('/proc/self/mountinfo', 'utf8'), readFile('/proc/self/cgroup', 'utf8')]);
  const mounts = mountPoints(mountinfo);
  const paths = ownPaths(selfCgroup);
  const unifiedDir = mounts.unified && join(mounts.unified, paths.get('') ?? '/');
  if (unifiedDir && !mounts.v1.has('memory')) {
    const controllers = await readFile(join(unifiedDir, 'cgroup.controllers'), 'utf8').catch(() => '');
    const missing = V2_CONTROLLERS.filter((c) => !controllers.split(/\s+/).includes(c));
    if (missing.length > 0)
      return { problem: `cgroup v2 at ${unifiedDir} does not offer ${missing.join(', ')} (not delegated to the runner)` };
    const base = await v2SlotsBase(unifiedDir, paths.get('') ?? '/');
    if ('problem' in base) return base;
    const layout: CgroupLayout = { version: 2, unified: base.dir };
    const problem = await probeLimits(layout);
    return problem ? { problem } : layout;
  }
  const v1 = {} as Record<V1Controller, string>;
  for (const controller of V1_CONTROLLERS) {
    const mount = mounts.v1.get(controller);
    if (!mount) return { problem: `no cgroup hierarchy offers the ${controller} controller` };
    v1[controller] = join(mount, paths.get(controller) ?? '/', SLOTS_FOLDER);
  }
  const layout: CgroupLayout = { version: 1, v1, ...(unifiedDir ? { unified: join(unifiedDir, SLOTS_FOLDER) } : {}) };
  const problem = await probeLimits(layout);
  return problem ? { problem } : layout;
}

const V2_CONTROLLERS = ['memory', 'pids', 'cpu'];

/** The controllers a v2 group hands to its children. */
async function handedDown(dir: string): Promise<string[]> {
  return (await readFile(join(dir, 'cgroup.subtree_control'), 'utf8').catch(() => '')).split(/\s+/).filter(Boolean);
}

/** Asks a v2 group to hand memory, pids and cpu to its children; true when it does. */
async function handDown(dir: string): Promise<boolean> {
  await writeFile(join(dir, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `+${c}`).join(' ')).catch(() => undefined);
  const handed = await handedDown(dir);
  return V2_CONTROLLERS.every((c) => handed.includes(c));
}

/**
 * cgroup v2 forbids processes in a group that hands controllers to its children. The slots' folder
 * goes under the runner's own group when that group can hand them down; in a container whose cgroup
 * namespace root is the runner's (`ownPath` '/'), its processes move into a leaf `runner` first;
 * else beside the runner, under its parent, when the parent hands them down already (a systemd
 * slice). The folder itself must hand them on to the slots.
 */
async function v2SlotsBase(own: string, ownPath: string): Promise<{ dir: string } | { problem: string }> {
  const under = async (parent: string) => {
    const dir = join(parent, SLOTS_FOLDER);
    await mkdir(dir, { recursive: true });
    return (await handDown(dir)) ? { dir } : { problem: `cgroup v2: ${dir} does not hand memory, pids and cpu to the slots` };
  };
  if (await handDown(own)) return under(own);
  if (ownPath === '/') {
    const leaf = join(own, 'runner');
    await mkdir(leaf, { recursive: true });
    const members = (await readFile(join(own, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean);
    for (const pid of members) await writeFile(join(leaf, 'cgroup.procs'), pid).catch(() => undefined);
    if (await handDown(own)) return under(own);
  }
  const parent = dirname(own);
  const handed = await handedDown(parent);
  if (V2_CONTROLLERS.every((c) => handed.includes(c))) return under(parent);
  return {
    problem: `cgroup v2: neither ${own} (it holds processes) nor its parent hands the memory, pids and cpu controllers down; give the runner a delegated cgroup, writable (in a container, its cgroup namespace's root)`,
  };
}

/**
 * Makes a throw-away slot group and sets limits on it: the runner refuses to start when it cannot,
 * rather than failing every job.
 */
async function probeLimits(layout: CgroupLayout): Promise<string | undefined> {
  const probe = new SlotCgroup(layout, `probe-${process.pid}`);
  try {
    await probe.reset();
    await probe.limit({ memoryBytes: 64 * 1024 * 1024, cpus: 1, pids: 64 });
    return undefined;
  } catch (err) {
    return `a slot's cgroup cannot be made or limited (${(err as Error).message})`;
  } finally {
    await probe.remove().catch(() => undefined);
  }
}

/** A runner slot's cgroup: every process of the slot's job joins it; limits, usage and a kill that nothing escapes. */
export class SlotCgroup {
  private readonly dirs: string[];
  /** The group `cgroup.kill` works on (v2, or the hybrid layout's cgroup2), if any. */
  private readonly killDir?: string;

  constructor(
    private readonly layout: CgroupLayout,
    readonly name: string,
  ) {
    if (layout.version === 2) {
      this.dirs = [join(layout.unified, name)];
      this.killDir = join(layout.unified, name);
    } else {
      this.dirs = [...V1_CONTROLLERS.map((c) => join(layout.v1[c], name)), ...(layout.unified ? [join(layout.unified, name)] : [])];
      if (layout.unified) this.killDir = join(layout.unified, name);
    }
  }

  /** The `cgroup.procs` files a process of the slot writes its pid to before it runs the job's code. */
  get procsFiles(): string[] {
    return this.dirs.map((dir) => join(dir, 'cgroup.procs'));
  }

  private file(controller: V1Controller | 'v2', name: string): string {
    if (this.layout.version === 2) return join(this.layout.unified, this.name, name);
    return join(this.layout.v1[controller as V1Controller], this.name, name);
  }

  /** Kills every process in the group and makes it anew: no process, counters at zero, no limit yet. */
  async reset(): Promise<void> {
    await this.kill();
    // Deepest first: a group's children (a job cannot make any, but be sure) go before it.
    for (const dir of this.dirs)
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    for (const dir of this.dirs) await mkdir(dir, { recursive: true });
  }

  /** Sets the job's limits on the group (before the job's first process starts). */
  async limit(limits: JobLimits): Promise<void> {
    const quota = Math.max(1000, Math.round(limits.cpus * 100_000));
    if (this.layout.version === 2) {
      await writeFile(this.file('v2', 'memory.max'), String(limits.memoryBytes));
      await writeFile(this.file('v2', 'memory.swap.max'), '0').catch(() => undefined); // no swap accounting: nothing to cap
      await writeFile(this.file('v2', 'pids.max'), String(limits.pids));
      await writeFile(this.file('v2', 'cpu.max'), `${quota} 100000`);
      return;
    }
    // memsw (memory + swap) must stay at or above the memory limit: raise it first, then set both.
    const memsw = this.file('memory', 'memory.memsw.limit_in_bytes');
    await writeFile(memsw, '-1').catch(() => undefined);
    await writeFile(this.file('memory', 'memory.limit_in_bytes'), String(limits.memoryBytes));
    await writeFile(memsw, String(limits.memoryBytes)).catch(() => undefined);
    await writeFile(this.file('pids', 'pids.max'), String(limits.pids));
    await writeFile(this.file('cpu', 'cpu.cfs_period_us'), '100000');
    await writeFile(this.file('cpu', 'cpu.cfs_quota_us'), String(quota));
  }

  /** What the slot's processes used since its last reset. */
  async usage(): Promise<SlotUsage> {
    const read = (controller: V1Controller | 'v2', name: string) => readFile(this.file(controller, name), 'utf8').catch(() => '');
    const field = (text: string, key: string) => Number(new RegExp(`^${key}\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const number = (text: string) => (text.trim() === '' ? undefined : Number(text.trim()));
    if (this.layout.version === 2) {
      const [peak, cpu, memoryEvents, pidsEvents] = await Promise.all([
        read('v2', 'memory.peak'),
        read('v2', 'cpu.stat'),
        read('v2', 'memory.events'),
        read('v2', 'pids.events'),
      ]);
      const usec = field(cpu, 'usage_usec');
      return {
        peakMemoryBytes: number(peak),
        cpuSeconds: usec / 1e6,
        oomKills: field(memoryEvents, 'oom_kill'),
        forksRefused: field(pidsEvents, 'max'),
      };
    }
    const [peak, cpu, oom, pidsEvents] = await Promise.all([
      read('memory', 'memory.max_usage_in_bytes'),
      read('cpuacct', 'cpuacct.usage'),
      read('memory', 'memory.oom_control'),
      read('pids', 'pids.events'),
    ]);
    const ns = number(cpu);
    return {
      peakMemoryBytes: number(peak),
      ...(ns === undefined ? {} : { cpuSeconds: ns / 1e9 }),
      oomKills: field(oom, 'oom_kill'),
      forksRefused: field(pidsEvents, 'max'),
    };
  }

  /**
   * Kills every process of the group, those it forks meanwhile included: `cgroup.kill` where the
   * kernel has it (one write, nothing escapes), else SIGKILL to each member until none is left (a
   * fork bomb is held by pids.max). Resolves once the group is empty.
   */
  async kill(): Promise<void> {
    if (this.killDir)
      await writeFile(join(this.killDir, 'cgroup.kill'), '1').catch((err: NodeJS.ErrnoException) =>
        err.code === 'ENOENT' ? undefined : Promise.reject(err),
      );
    for (let pass = 0; pass < 500; pass++) {
      const members = await this.members();
      if (members.length === 0) return;
      for (const pid of members) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`the processes of cgroup ${this.name} could not all be killed`);
  }

  /** The pids in the group, across its hierarchies (v1 groups can differ for a moment while a process joins). */
  private async members(): Promise<number[]> {
    const lists = await Promise.all(this.procsFiles.map((file) => readFile(file, 'utf8').catch(() => '')));
    return [...new Set(lists.flatMap((list) => list.split('\n').filter(Boolean).map(Number)))];
  }

  /** Kills the group's processes and removes the group (the runner stops, or the slot's uid was lost). */
  async remove(): Promise<void> {
    await this.kill();
    for (const dir of this.dirs) await rmdir(dir).catch(() => undefined);
  }
}

/**
 * The slot groups under the runner's slots folder whose names `keep` refuses: on a runner's start,
 * groups left by a runner that died (their uids are free on this machine now).
 */
export async function strayGroups(layout: CgroupLayout, isStray: (name: string) => Promise<boolean>): Promise<string[]> {
  const folder = layout.version === 2 ? layout.unified : layout.v1.pids;
  const names = (await readdir(folder, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
  const stray: string[] = [];
  for (const name of names) if (await isStray(name)) stray.push(name);
  return stray;
}
