import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { egressRoutes, egressRuleset, hostAddresses, type Cidr } from './egress.js';
import type { SandboxTools } from './tools.js';

/** How long slirp4netns may take to attach to a namespace before the slot is given up. */
const SLIRP_READY_MS = 10_000;

/**
 * A runner slot's own network namespace: its loopback is the job's alone (the CLI, the program host
 * and the providers talk there), and its only way out is slirp4netns, a user-mode stack that makes
 * the job's connections from the runner's side, with the host's loopback closed
 * (`--disable-host-loopback`) and every non-public range, and the machine's own addresses,
 * prohibited by the namespace's routes (JOB_EGRESS_ALLOW opens ranges). The job's processes have no
 * capability in it, so they cannot change its routes. The namespace lives as long as the slot (a
 * bind mount of it under `dir`); nothing a job leaves in it survives the job, since every process
 * of the slot is killed after each job and sockets die with their processes.
 */
export class SlotNetwork {
  private slirp?: ChildProcess;

  private constructor(
    private readonly tools: SandboxTools,
    /** The namespace's file (a bind mount of its nsfs inode): `nsenter --net=<path>` joins it. */
    readonly path: string,
  ) {}

  static async open(tools: SandboxTools, dir: string, uid: number, allow: readonly Cidr[]): Promise<SlotNetwork> {
    await privateMountFolder(tools, dir);
    const network = new SlotNetwork(tools, join(dir, `uid-${uid}`));
    try {
      await network.create();
      await network.attachSlirp();
      await network.route(allow);
    } catch (err) {
      await network.close();
      throw err;
    }
    return network;
  }

  /** A new namespace at `path` (one left by a runner that died is unmounted first: nothing of it is kept). */
  private async create(): Promise<void> {
    await execa(this.tools.umount, ['-l', this.path], { reject: false });
    await rm(this.path, { force: true });
    await writeFile(this.path, '', { mode: 0o600 });
    await execa(this.tools.unshare, [`--net=${this.path}`, 'true']);
  }

  /** Starts slirp4netns for the namespace and waits until it has configured the namespace's interface. */
  private async attachSlirp(): Promise<void> {
    // fd 3: slirp says it is ready; fd 4: slirp exits when it closes, so it never outlives the runner.
    const slirp = spawn(
      this.tools.slirp4netns,
      [
        '--configure',
        '--mtu=65520',
        '--disable-host-loopback',
        '--enable-sandbox',
        '--enable-seccomp',
        '--ready-fd=3',
        '--exit-fd=4',
        '--netns-type=path',
        this.path,
        'tap0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    this.slirp = slirp;
    let stderr = '';
    slirp.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk).slice(-2000)));
    const ready = slirp.stdio[3];
    if (!ready) throw new Error('slirp4netns has no ready pipe');
    const timer = setTimeout(() => slirp.kill('SIGKILL'), SLIRP_READY_MS);
    try {
      const outcome = await Promise.race([
        once(ready, 'data').then(() => 'ready' as const),
        once(slirp, 'exit').then(([code]) => `exited with code ${code}` as const),
        once(slirp, 'error').then(([err]) => `could not start (${(err as Error).message})` as const),
      ]);
      if (outcome !== 'ready') throw new Error(`slirp4netns ${outcome}: ${stderr.trim().split('\n').slice(-2).join(' ')}`);
    } finally {
      clearTimeout(timer);
    }
    slirp.unref();
    for (const stream of [slirp.stderr, ready, slirp.stdio[4]]) (stream as { unref?(): void } | null)?.unref?.();
  }

  /**
   * The namespace's routes (non-public ranges and the machine's addresses prohibited, allowed ranges
   * through) and its firewall, which holds the same lines where routes do not (egressRuleset).
   */
  async route(allow: readonly Cidr[]): Promise<void> {
    const machine = hostAddresses();
    const inside = [`--net=${this.path}`, '--'];
    const routes = await execa(this.tools.nsenter, [...inside, this.tools.ip, '-batch', '-'], {
      input: `${egressRoutes(allow, machine).join('\n')}\n`,
      reject: false,
    });
    if (routes.exitCode !== 0) throw new Error(`the job network's routes could not be set: ${routes.stderr.trim()}`);
    const firewall = await execa(this.tools.nsenter, [...inside, this.tools.nft, '-f', '-'], {
      input: egressRuleset(allow, machine),
      reject: false,
    });
    if (firewall.exitCode !== 0) throw new Error(`the job network's firewall could not be set: ${firewall.stderr.trim()}`);
  }

  /** Stops slirp4netns and removes the namespace. */
  async close(): Promise<void> {
    const slirp = this.slirp;
    this.slirp = undefined;
    if (slirp && slirp.exitCode === null && slirp.signalCode === null) {
      slirp.ref(); // unref'd while it serves: waiting for its end must keep this process alive
      const exited = once(slirp, 'exit');
      slirp.kill('SIGTERM');
      await exited;
    }
    await execa(this.tools.umount, ['-l', this.path], { reject: false });
    await rm(this.path, { force: true });
  }
}

/** Removes the namespaces under `dir` of uids `isStray` says no runner holds (left by runners that died). */
export async function removeStrayNetworks(tools: SandboxTools, dir: string, isStray: (uid: number) => Promise<boolean>): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const uid = Number(/^uid-(\d+)$/.exec(name)?.[1]);
    if (!Number.isInteger(uid) || !(await isStray(uid))) continue;
    await execa(tools.umount, ['-l', join(dir, name)], { reject: false });
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Makes `dir` a mount point of its own with private propagation (as `ip netns` does for /run/netns),
 * so that the namespaces bound in it neither spread to nor come from other mount namespaces.
 */
async function privateMountFolder(tools: SandboxTools, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  const mounted = mounts.split('\n').some((line) => line.split(' ')[4] === dir);
  if (!mounted) await execa(tools.mount, ['--bind', dir, dir]);
  await execa(tools.mount, ['--make-private', dir]);
}
