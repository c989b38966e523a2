import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Identity } from '../isolation/ownership.js';
import { programHostCommand } from '../sandbox/job-sandbox.js';
import type { SlotSandbox } from '../sandbox/slot-sandbox.js';

/** A sandboxed slot's host: the slot's sandbox, and the credential folders' parent (docs/security.md). */
export interface HostSandbox {
  slot: SlotSandbox;
  secretsRoot: string;
}

export const PROGRAM_HOST = fileURLToPath(new URL('./program-host.js', import.meta.url));

/**
 * Starts a program host for `programDir` and resolves once it has loaded Node and the SDK (about
 * 200 ms of a job's start otherwise). It then waits for a `start` message with its job.
 */
export async function forkProgramHost(
  programDir: string,
  env: Record<string, string>,
  identity?: Identity,
  sandbox?: HostSandbox,
): Promise<ChildProcess> {
  const child = sandbox
    ? spawnSandboxedHost(programDir, env, sandbox)
    : fork(PROGRAM_HOST, [programDir], {
        cwd: programDir,
        env,
        // The program is code of the platform's users: it runs as the job's slot uid, never as the runner.
        ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        execArgv: ['--enable-source-maps'],
      });
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: { type: string }) => {
      if (message.type !== 'warm') return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null) => reject(new Error(`program host exited with code ${code} before it was ready`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    // A host that cannot even start (a missing program folder) reports it here, not as a crash.
    child.once('error', (err) => reject(new Error(`program host could not start: ${err.message}`)));
  });
  return child;
}

/** A host in its slot's sandbox: Node started by the sandbox's command line, with the IPC channel a fork has. */
function spawnSandboxedHost(programDir: string, env: Record<string, string>, sandbox: HostSandbox): ChildProcess {
  const folders = { pulumiHome: env.PULUMI_HOME ?? '', programDir, secretsRoot: sandbox.secretsRoot };
  const command = programHostCommand(sandbox.slot, folders, process.execPath, ['--enable-source-maps', PROGRAM_HOST, programDir]);
  return spawn(command.file, command.args, { cwd: programDir, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
}

/** What a warm host was started for: a host serves only a job of the same program, environment and uid. */
interface HostSpec {
  programDir: string;
  env: Record<string, string>;
  identity?: Identity;
  /** Not part of the key: a slot uid has one sandbox. */
  sandbox?: HostSandbox;
}

/**
 * Keeps one program host warm per program (and environment and slot uid) a runner has used, so the next job of
 * that kind takes a host that is already loaded. Each host serves one job: a host taken is replaced
 * at once, except one of a slot uid: that is replaced only after the job, once every process of the
 * uid has been killed (`rewarm`), since a job's program could tamper with a host of its own uid
 * that waits for the slot's next job. At most `max` warm hosts are kept; the oldest goes first.
 */
export class ProgramHostPool {
  private readonly warm = new Map<string, { host: Promise<ChildProcess>; spec: HostSpec }>();
  /** Hosts taken by jobs of a slot uid, to be warmed again once the job's processes are gone. */
  private readonly wanted = new Map<string, HostSpec>();
  private closed = false;

  constructor(private readonly max = 4) {}

  /** A warm host for the program, or a new one if none is ready; a replacement starts warming. */
  async take(programDir: string, env: Record<string, string>, identity?: Identity, sandbox?: HostSandbox): Promise<ChildProcess> {
    const spec: HostSpec = { programDir, env, ...(identity ? { identity } : {}), ...(sandbox ? { sandbox } : {}) };
    const key = hostKey(spec);
    const waiting = this.warm.get(key)?.host;
    this.warm.delete(key);
    if (identity) this.wanted.set(key, spec);
    else this.refill(key, spec);
    const child = await waiting?.catch(() => undefined);
    if (child && child.exitCode === null && child.signalCode === null && child.connected) return child;
    return forkProgramHost(programDir, env, identity, sandbox);
  }

  /**
   * After a job of `uid` ended and every process of that uid was killed: warms again the hosts its
   * jobs took, and replaces the uid's other warm hosts (the job could have reached them).
   */
  rewarm(uid: number): void {
    const ofUid = (spec: HostSpec) => spec.identity?.uid === uid;
    const stale = [...this.warm].filter(([, entry]) => ofUid(entry.spec));
    for (const [key, entry] of stale) {
      this.discard(key);
      this.wanted.set(key, entry.spec);
    }
    for (const [key, spec] of [...this.wanted].filter(([, spec]) => ofUid(spec))) {
      this.wanted.delete(key);
      this.refill(key, spec);
    }
  }

  private refill(key: string, spec: HostSpec): void {
    if (this.closed) return;
    if (this.warm.size >= this.max) {
      const [oldest] = this.warm.keys();
      if (oldest) this.discard(oldest);
    }
    const starting = forkProgramHost(spec.programDir, spec.env, spec.identity, spec.sandbox);
    starting.catch(() => undefined); // a host that fails to warm is replaced by a fresh fork when taken
    this.warm.set(key, { host: starting, spec });
  }

  private discard(key: string): void {
    const host = this.warm.get(key)?.host;
    this.warm.delete(key);
    void host?.then((child) => child.kill('SIGTERM')).catch(() => undefined);
  }

  /** How many hosts are warm or warming. */
  get size(): number {
    return this.warm.size;
  }

  /** Stops every warm host. */
  async close(): Promise<void> {
    this.closed = true;
    const hosts = await Promise.all([...this.warm.values()].map((entry) => entry.host.catch(() => undefined)));
    this.warm.clear();
    await Promise.all(
      hosts.map(async (child) => {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }),
    );
  }
}

function hostKey(spec: HostSpec): string {
  return createHash('sha256')
    .update(spec.programDir)
    .update(JSON.stringify(spec.env))
    .update(JSON.stringify(spec.identity ?? null))
    .digest('hex');
}
