import { dirname } from 'node:path';
import type { Identity } from '../isolation/ownership.js';
import type { SlotSandbox } from './slot-sandbox.js';

/** What a job's folders are, for its sandbox's view of the machine. */
export interface JobFolders {
  /** The slot's Pulumi home (its parent, the job's HOME, holds its TMPDIR). */
  pulumiHome: string;
  workspaceDir: string;
  programDir: string;
  /** The job's credential files, if any (WORK_DIR/secrets/<job>). */
  secretsDir: string;
  /** Its stack's state folder and its local folders (the room hands them to the slot's uid). */
  handed: readonly string[];
}

/** How one of a job's processes is started: its command line, and the uid options (none in a sandbox: setpriv drops to it). */
export interface JobCommand {
  file: string;
  args: string[];
  user: { uid?: number; gid?: number };
}

/**
 * A job's processes as started by the runner: in its slot's sandbox (each sees the system read-only,
 * its own folders writable, no other job's folder at all), or, without one, as the slot's uid.
 */
export class JobProcesses {
  constructor(
    private readonly folders: JobFolders,
    private readonly identity?: Identity,
    private readonly sandbox?: SlotSandbox,
  ) {}

  /** A Pulumi CLI process of the job (and the plugins it starts): its workspace, home, state, local folders and credential files. */
  cli(file: string, args: readonly string[]): JobCommand {
    const { folders } = this;
    if (!this.sandbox) return { file, args: [...args], user: this.user };
    const view = {
      writable: [dirname(folders.pulumiHome), folders.workspaceDir, ...folders.handed],
      readOnly: [folders.programDir],
      readOnlyIfPresent: [folders.secretsDir],
      cwd: folders.workspaceDir,
    };
    return { ...this.sandbox.command(view, file, args), user: {} };
  }

  private get user(): { uid?: number; gid?: number } {
    return this.identity ? { uid: this.identity.uid, gid: this.identity.gid } : {};
  }
}

/**
 * The program host of a slot (started before its job is known, to be warm): its program, and the
 * slot's home. The credential folders' parent is bound too (0711: each job's folder is its uid's
 * alone), since a program may read the files its credential's variables name.
 */
export function programHostCommand(
  sandbox: SlotSandbox,
  folders: { pulumiHome: string; programDir: string; secretsRoot: string },
  file: string,
  args: readonly string[],
): { file: string; args: string[] } {
  const view = {
    writable: [dirname(folders.pulumiHome)],
    readOnly: [folders.programDir],
    readOnlyIfPresent: [folders.secretsRoot],
    cwd: folders.programDir,
  };
  return sandbox.command(view, file, args);
}
