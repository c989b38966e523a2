import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { Identity } from './ownership.js';

/** The uids a runner process holds for its slots, and how it gives them back. */
export interface UidLease {
  uids: number[];
  release(): Promise<void>;
}

export class NoFreeUidError extends Error {
  override name = 'NoFreeUidError';
}

/**
 * Leases `needed` uids of [base, base + count) for this process's lifetime, so that runner processes
 * sharing a machine never run jobs as the same uid (a shared uid would let one runner's job read
 * another's files). A lease is a listening abstract unix socket named after the uid: binding is
 * exclusive and atomic, and the kernel frees it when the process dies, so a crashed runner leaves
 * nothing to clean up. Its scope is the network namespace: a machine, or a Kubernetes pod.
 */
export async function leaseUids(base: number, count: number, needed: number): Promise<UidLease> {
  const held: Server[] = [];
  const uids: number[] = [];
  for (let uid = base; uid < base + count && uids.length < needed; uid++) {
    const server = await bindLease(uid);
    if (!server) continue;
    held.push(server);
    uids.push(uid);
  }
  const release = async () => {
    await Promise.all(held.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  };
  if (uids.length < needed) {
    await release();
    throw new NoFreeUidError(
      `only ${uids.length} of the ${needed} slot uids needed are free in ${base}..${base + count - 1} (other runners on this machine hold the rest): raise RUNNER_UID_COUNT or lower RUNNER_CONCURRENCY`,
    );
  }
  return { uids, release };
}

/** Binds the uid's lease socket, or answers undefined when another process holds it. */
async function bindLease(uid: number): Promise<Server | undefined> {
  // Anyone may connect to an abstract socket; a connection is closed at once and means nothing.
  const server = createServer((socket) => socket.destroy());
  server.unref();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0pds-runner-uid-${uid}`, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
    throw err;
  }
}

/**
 * Kills every process running as `identity`'s uid: whatever a job's program left behind (a daemon
 * it forked, a child it detached) so that nothing of one job waits in the slot for the next. It
 * runs kill(-1, SIGKILL) as that uid: the kernel signals every process the uid may signal (its own),
 * in one pass that a forking process cannot outrun. Only ever for a uid this process leases.
 */
export async function killProcessesOf(identity: Identity): Promise<void> {
  // procps' kill starts in 4 ms, Node in 40: Node only where the image has no /bin/kill.
  const [command, args] = existsSync('/bin/kill')
    ? ['/bin/kill', ['-KILL', '-1']]
    : [process.execPath, ['-e', "process.kill(-1, 'SIGKILL')"]];
  const child = spawn(command, args, { uid: identity.uid, gid: identity.gid, env: {}, stdio: 'ignore' });
  const failed = once(child, 'error').then(([err]) => {
    throw new Error(`could not kill the processes of uid ${identity.uid}: ${(err as Error).message}`);
  });
  // The exit code says nothing useful: 1 when some process (not the uid's) could not be signalled.
  await Promise.race([once(child, 'exit'), failed]);
}
