import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Identity } from '../isolation/ownership.js';

export const PROGRAM_HOST = fileURLToPath(new URL('./program-host.js', import.meta.url));

/**
 * Starts a program host for `programDir` and resolves once it has loaded Node and the SDK (about
 * 200 ms of a job's start otherwise). It then waits for a `start` message with its job.
 */
export async function forkProgramHost(programDir: string, env: Record<string, string>, identity?: Identity): Promise<ChildProcess> {
  const child = fork(PROGRAM_HOST, [programDir], {
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

/**
 * Keeps one program host warm per program (and environment and slot uid) a runner has used, so the next job of
 * that kind takes a host that is already loaded. Each host serves one job: a host taken is replaced
 * at once. At most `max` warm hosts are kept; the oldest goes first.
 */
export class ProgramHostPool {
  private readonly warm = new Map<string, Promise<ChildProcess>>();
  private closed = false;

  constructor(private readonly max = 4) {}

  /** A warm host for the program, or a new one if none is ready; a replacement starts warming. */
  async take(programDir: string, env: Record<string, string>, identity?: Identity): Promise<ChildProcess> {
    const key = createHash('sha256')
      .update(programDir)
      .update(JSON.stringify(env))
      .update(JSON.stringify(identity ?? null))
      .digest('hex');
    const waiting = this.warm.get(key);
    this.warm.delete(key);
    this.refill(key, programDir, env, identity);
    const child = await waiting?.catch(() => undefined);
    if (child && child.exitCode === null && child.signalCode === null && child.connected) return child;
    return forkProgramHost(programDir, env, identity);
  }

  private refill(key: string, programDir: string, env: Record<string, string>, identity?: Identity): void {
    if (this.closed) return;
    if (this.warm.size >= this.max) {
      const [oldest] = this.warm.keys();
      if (oldest) this.discard(oldest);
    }
    const starting = forkProgramHost(programDir, env, identity);
    starting.catch(() => undefined); // a host that fails to warm is replaced by a fresh fork when taken
    this.warm.set(key, starting);
  }

  private discard(key: string): void {
    const host = this.warm.get(key);
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
    const hosts = await Promise.all([...this.warm.values()].map((h) => h.catch(() => undefined)));
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
