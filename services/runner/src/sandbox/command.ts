import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, sep } from 'node:path';
import type { Identity } from '../isolation/ownership.js';
import type { SandboxTools } from './tools.js';

/** What one sandboxed process sees of the machine's folders beyond the read-only system. */
export interface MountView {
  /** Folders it may write (its slot's home, its workspace, its stack's state, its local folders). */
  writable: string[];
  /** Folders it may read that would be hidden otherwise (its program under WORK_DIR, its credential files). */
  readOnly: string[];
  /** Folders only one of `readOnly` may need, bound only when they exist (a credential folder). */
  readOnlyIfPresent?: string[];
  cwd: string;
}

/** What every process of a slot shares: the slot's network, cgroup, uid, and the folders no job sees. */
export interface SlotSpec {
  tools: SandboxTools;
  identity: Identity;
  netnsPath: string;
  procsFiles: string[];
  /** The service's own files inside a private temp folder (a checkout in /tmp), bound back read-only before anything is hidden. */
  serviceFiles: string[];
  /** Hidden behind an empty tmpfs (WORK_DIR, the state root, LOCAL_FILES_ROOT …): other jobs' folders are not mounted at all. */
  hidden: string[];
  /** Files shown empty (/dev/null over them): the runner's secrets given as NAME_FILE. */
  hiddenFiles: string[];
  /** The file bound as /etc/resolv.conf (slirp4netns's DNS). */
  resolvConf: string;
  /** Size of the private /tmp, /var/tmp and /dev/shm, each (memory-backed: counted in the job's memory). */
  tmpBytes: number;
  /** The largest file a job may write (RLIMIT_FSIZE). */
  fileBytes: number;
}

/** The folders a sandbox makes its own (empty, memory-backed): what the service needs from inside them is bound back. */
export const PRIVATE_TEMP = ['/tmp', '/var/tmp', '/dev/shm'];

/**
 * Joins the cgroups named before `--` (each write its pid to one `cgroup.procs`), then runs the rest:
 * every process the job starts from then on is in its slot's groups, so its limits hold and one kill
 * takes all. A plain shell, not code of ours running as root.
 */
const JOIN_CGROUPS = 'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"';

/**
 * The command line that runs `file args` in its slot's sandbox: in the slot's cgroups and network
 * namespace, in new PID, IPC, UTS and mount namespaces (bubblewrap) where the system is read-only,
 * /proc shows only its own processes, /tmp, /var/tmp and /dev/shm are its own and `view` says which
 * folders exist at all, then as the slot's uid with no capability and no way to gain one (setpriv).
 * bubblewrap's init is the namespace's pid 1: when the command ends, or the runner dies (SIGKILL
 * included: --die-with-parent), every process left in the namespace is killed by the kernel.
 */
export function sandboxedCommand(slot: SlotSpec, view: MountView, file: string, args: readonly string[]): { file: string; args: string[] } {
  const { tools, identity } = slot;
  // The private temp folders hide the machine's already (a hidden folder may be one: LOCAL_FILES_ROOT=/tmp).
  const hidden = outermost(slot.hidden.filter((dir) => existsSync(dir) && !PRIVATE_TEMP.includes(dir.replace(/\/+$/, ''))));
  const bound = [...view.readOnly, ...(view.readOnlyIfPresent ?? []), ...view.writable];
  const bwrap = [
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
    ...PRIVATE_TEMP.flatMap((dir) => ['--perms', '1777', '--size', String(slot.tmpBytes), '--tmpfs', dir]),
    '--tmpfs', '/sys/fs/cgroup',
    ...byDepth(slot.serviceFiles).flatMap((dir) => ['--ro-bind', dir, dir]),
    ...hidden.flatMap((dir) => ['--perms', '0711', '--tmpfs', dir]),
    ...slot.hiddenFiles.filter((file) => existsSync(file)).flatMap((file) => ['--ro-bind', '/dev/null', file]),
    // The way to a bound folder inside a hidden one: passable (0711), never listable, like WORK_DIR.
    ...waysThrough([...hidden, ...PRIVATE_TEMP], bound, slot.serviceFiles).flatMap((dir) => ['--perms', '0711', '--dir', dir]),
    ...byDepth(view.readOnly).flatMap((dir) => ['--ro-bind', dir, dir]),
    ...byDepth(view.readOnlyIfPresent ?? []).flatMap((dir) => ['--ro-bind-try', dir, dir]),
    ...byDepth(view.writable).flatMap((dir) => ['--bind', dir, dir]),
    '--ro-bind', slot.resolvConf, '/etc/resolv.conf',
    '--chdir', view.cwd,
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    '--hostname', 'pulumi-job',
    '--die-with-parent',
    '--new-session',
    // What the steps to the slot's uid need, and nothing more: entering the job's folder (it is the
    // uid's, 0700), then setpriv's drop; setpriv leaves none of them to the command.
    '--cap-drop', 'ALL', '--cap-add', 'CAP_DAC_READ_SEARCH',
    '--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID', '--cap-add', 'CAP_SETPCAP',
  ]; // prettier-ignore
  const dropToUid = [
    `--reuid=${identity.uid}`,
    `--regid=${identity.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
  ];
  return {
    file: tools.sh,
    args: [
      '-c', JOIN_CGROUPS, 'pds-job', ...slot.procsFiles, '--',
      tools.nsenter, `--net=${slot.netnsPath}`, '--',
      tools.bwrap, ...bwrap, '--',
      tools.prlimit, `--fsize=${slot.fileBytes}`, '--core=0', '--',
      tools.setpriv, ...dropToUid, '--',
      file, ...args,
    ], // prettier-ignore
  };
}

/**
 * The folders between a hidden folder and each folder bound inside it, parents first; not those the
 * service's own files bring along (they are real folders there).
 */
function waysThrough(hidden: readonly string[], bound: readonly string[], real: readonly string[]): string[] {
  const ways = new Set<string>();
  const deepestFirst = [...hidden].sort((a, b) => b.length - a.length);
  for (const dir of bound) {
    const root = deepestFirst.find((h) => dir.startsWith(`${h}${sep}`));
    if (!root) continue;
    for (let up = dirname(dir); up !== root && up.startsWith(`${root}${sep}`); up = dirname(up)) {
      if (!real.some((r) => up === r || up.startsWith(`${r}${sep}`))) ways.add(up);
    }
  }
  return byDepth([...ways]);
}

/** Parents before children, so a folder bound inside another is bound after it. */
function byDepth(dirs: readonly string[]): string[] {
  return [...new Set(dirs)].sort((a, b) => a.split(sep).length - b.split(sep).length || a.localeCompare(b));
}

/** The folders not inside another of the list (hiding a folder hides what is in it). */
function outermost(dirs: readonly string[]): string[] {
  const sorted = byDepth(dirs.map((d) => d.replace(/\/+$/, '')));
  return sorted.filter((dir, i) => !sorted.slice(0, i).some((outer) => dir.startsWith(`${outer}${sep}`)));
}

/**
 * The pid (as the runner sees it) of the command a sandbox runs: the child of bubblewrap's init,
 * itself the child of the process the runner started. Signals meant for the command (SIGINT:
 * Pulumi's graceful cancel) go there; bubblewrap's own processes pass none on.
 */
export async function sandboxedPid(outerPid: number): Promise<number | undefined> {
  let pid = outerPid;
  for (let depth = 0; depth < 2; depth++) {
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    const first = Number(children.trim().split(' ')[0]);
    if (!first) return undefined;
    pid = first;
  }
  return pid;
}
