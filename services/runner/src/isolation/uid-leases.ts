import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { uidLeaseKey } from '@pds/shared';
import type { Redis } from 'ioredis';
import { mapBounded, SCAN_CONCURRENCY } from './bounded.js';
import type { Identity } from './ownership.js';

/** The uids a runner process holds for its slots, and how it keeps and gives them back. */
export interface UidLease {
  uids: number[];
  /** Renews the fleet-wide leases; answers the uids another runner holds now (lost). */
  renew(): Promise<number[]>;
  release(): Promise<void>;
}

/** Where the fleet's leases live, and who this runner is there. */
export interface FleetLeases {
  redis: Pick<Redis, 'set' | 'eval'>;
  owner: string;
}

export class NoFreeUidError extends Error {
  override name = 'NoFreeUidError';
}

/** How long a fleet-wide lease lives without renewal (the runner renews it every beat). */
export const UID_LEASE_MS = 60_000;
const RENEW = `local v = redis.call('get', KEYS[1])
if v == ARGV[1] or not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Leases `needed` uids of [base, base + count) for this process's lifetime, so that no two runners
 * run jobs as the same uid (a shared uid would let one runner's job read another's files). Two
 * locks, both needed:
 * - on the machine, a listening abstract unix socket named after the uid: exclusive, atomic, freed
 *   by the kernel when the process dies (its scope is the network namespace: a machine or a pod);
 * - across the fleet (`fleet`), a Redis key renewed every beat: runners in other containers or pods
 *   can share folders (a `file://` state volume), so a uid must be unique among all of them.
 */
export async function leaseUids(base: number, count: number, needed: number, fleet?: FleetLeases): Promise<UidLease> {
  const held: { uid: number; server: Server }[] = [];
  for (let uid = base; uid < base + count && held.length < needed; uid++) {
    const server = await bindLease(uid);
    if (!server) continue;
    if (fleet && (await fleet.redis.set(uidLeaseKey(uid), fleet.owner, 'PX', UID_LEASE_MS, 'NX')) !== 'OK') {
      await closeServer(server);
      continue;
    }
    held.push({ uid, server });
  }
  const release = async () => {
    await Promise.all(
      held.map(async ({ uid, server }) => {
        await closeServer(server);
        if (fleet) await Promise.resolve(fleet.redis.eval(RELEASE, 1, uidLeaseKey(uid), fleet.owner)).catch(() => undefined);
      }),
    );
  };
  if (held.length < needed) {
    await release();
    throw new NoFreeUidError(
      `only ${held.length} of the ${needed} slot uids needed are free in ${base}..${base + count - 1} (other runners hold the rest): raise RUNNER_UID_COUNT or lower RUNNER_CONCURRENCY`,
    );
  }
  const renew = async () => {
    if (!fleet) return [];
    const kept = await Promise.all(held.map(({ uid }) => fleet.redis.eval(RENEW, 1, uidLeaseKey(uid), fleet.owner, UID_LEASE_MS)));
    return held.filter((_, i) => kept[i] !== 1).map(({ uid }) => uid);
  };
  return { uids: held.map(({ uid }) => uid), renew, release };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
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

/** A process of a uid: its pid and whether it is stopped already (a zombie runs nothing and is left out). */
interface UidProcess {
  pid: number;
  stopped: boolean;
}

/**
 * The processes running as `uid` (real, effective or saved), from /proc: this pid namespace's. A
 * zombie runs nothing and is left out, unless only its main thread has exited: its other threads
 * still run as the uid (its state is then that of those threads).
 */
export async function processesOf(uid: number): Promise<UidProcess[]> {
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  // Many at once (one after another took 150 ms a scan at 8 jobs), within a bound on open files.
  const statuses = await mapBounded(pids, SCAN_CONCURRENCY, (pid) => readFile(`/proc/${pid}/status`, 'utf8').catch(ifGone('')));
  const found: UidProcess[] = [];
  for (const [i, status] of statuses.entries()) {
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
    if (!uids || !uids.slice(1, 4).some((id) => Number(id) === uid)) continue;
    const pid = Number(pids[i]);
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (state !== 'Z' && state !== 'X') {
      found.push({ pid, stopped: state === 'T' || state === 't' });
      continue;
    }
    const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
    if (threads <= 1) continue;
    const states = await threadStates(pid);
    if (states.length > 0) found.push({ pid, stopped: states.every((s) => s === 'T' || s === 't') });
  }
  return found;
}

/** The states of a process's threads that still run (not zombies), from /proc/<pid>/task. */
async function threadStates(pid: number): Promise<string[]> {
  const tids = await readdir(`/proc/${pid}/task`).catch(ifGone<string[]>([]));
  const stats = await mapBounded(tids, SCAN_CONCURRENCY, (tid) => readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(ifGone('')));
  // The state is the field after the command, which is in parentheses and may hold anything.
  const stateOf = (stat: string) => stat.charAt(stat.lastIndexOf(')') + 2);
  return stats
    .filter(Boolean)
    .map(stateOf)
    .filter((state) => state !== 'Z' && state !== 'X');
}

/**
 * `value` for a process or thread that exited while the scan read it; any other error (out of
 * descriptors, say) fails the scan, so that a live process is never taken for a gone one (the slot
 * is then not reused).
 */
function ifGone<T>(value: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT' || err.code === 'ESRCH') return value;
    throw err;
  };
}

/** How many passes over /proc a kill may take before the uid is declared unkillable. */
const KILL_PASSES = 200;

/**
 * Kills every process running as `identity`'s uid: whatever a job's program left behind (a daemon
 * it forked, a child it detached), so that nothing of one job waits in the slot for the next. The
 * runner does it itself, never as the uid (a process of the uid could kill a killer running as the
 * uid): it stops every process of the uid (a stopped process cannot fork or signal), scans again
 * until a pass finds none still running, then kills them all, and checks none is left. Throws if
 * processes of the uid remain after KILL_PASSES passes. Only ever for a uid this process leases.
 */
export async function killProcessesOf(identity: Identity): Promise<void> {
  for (let pass = 0; pass < KILL_PASSES; pass++) {
    const found = await processesOf(identity.uid);
    if (found.length === 0) return;
    const running = found.filter((p) => !p.stopped);
    const signal = running.length === 0 ? 'SIGKILL' : 'SIGSTOP';
    for (const { pid } of running.length === 0 ? found : running) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone meanwhile
      }
    }
    // A killed process is a zombie (left out) once the kernel has torn it down: give it a moment.
    if (signal === 'SIGKILL') await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`processes of uid ${identity.uid} were still running after ${KILL_PASSES} passes: the slot is not reused`);
}

/** Whether no runner process on this machine holds `uid` now (its lease socket is free). */
export async function uidFreeOnMachine(uid: number): Promise<boolean> {
  const server = await bindLease(uid);
  if (!server) return false;
  await closeServer(server);
  return true;
}
