import { existsSync } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '@pds/shared';
import { freePort, type Managed, recentOutput, startProcess, waitForPort, waitForSocket } from './processes.js';

/** Where scripts/ensure-tools.sh puts the pinned tools. */
export const toolsBin = join(repoRoot, '.tools', 'bin');

export function toolPath(name: 'pulumi' | 'ferretdb' | 'redis-server' | 'st' | 'kustomize' | 'chromium'): string {
  const path = join(toolsBin, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run tools\` first`);
  return path;
}

export interface LocalServer {
  url: string;
  port: number;
  /** The server's process id (tests pause it with SIGSTOP to play an outage); absent for containers. */
  pid?: number;
  stop(): Promise<void>;
}

async function started(managed: Managed, port: number, url: string, what: string): Promise<LocalServer> {
  try {
    await waitForPort(port, 20_000, managed.child);
  } catch (err) {
    await managed.stop();
    throw new Error(`${what} did not start: ${(err as Error).message}\n${recentOutput(managed)}`, { cause: err });
  }
  return { url, port, pid: managed.child.pid, stop: () => managed.stop() };
}

/**
 * A private redis-server on a free (or given) port, with no persistence. With `password`, every
 * client must give it (`requirepass`); with `users`, each named user gets its own `user` directive
 * (store-users.ts) and Redis's `default` user is off. The URL carries the password, `shownUrl` not.
 */
export async function startLocalRedis(
  options: { port?: number; password?: string; users?: string[] } = {},
): Promise<LocalServer & { shownUrl: string }> {
  const port = options.port ?? (await freePort());
  // One word per argument: redis-server joins the words after `--user` into the directive (one
  // argument holding spaces would be taken as a user name).
  const users = options.users?.flatMap((directive) => ['--user', ...directive.split(' ')]) ?? [];
  const managed = startProcess(toolPath('redis-server'), [
    ...(options.password ? ['--requirepass', options.password] : []),
    ...users,
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
  ]);
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  const server = await started(managed, port, `redis://${auth}127.0.0.1:${port}`, 'redis-server');
  return { ...server, shownUrl: `redis://${auth ? ':***@' : ''}127.0.0.1:${port}` };
}

/**
 * A private FerretDB (MongoDB wire protocol) backed by SQLite files in `dataDir`: on a TCP port, or
 * with `socket`, only on a unix socket in `dataDir` (the embedded default: only the service's user
 * can open it, and FerretDB's own authentication is still experimental).
 */
export async function startLocalFerretDb(options: {
  dataDir: string;
  port?: number;
  database?: string;
  socket?: boolean;
}): Promise<LocalServer> {
  // Its SQLite files are the whole store: readable by the service's user only (jobs run as other uids).
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  await chmod(options.dataDir, 0o700);
  const database = options.database ?? 'pulumi-deploy';
  const socket = join(options.dataDir, 'ferretdb.sock');
  const port = options.socket ? 0 : (options.port ?? (await freePort()));
  // A socket left by a FerretDB that was killed would make the next one fail with EADDRINUSE.
  if (options.socket) await rm(socket, { force: true });
  const managed = startProcess(toolPath('ferretdb'), [
    '--handler=sqlite',
    `--sqlite-url=file:${options.dataDir.replace(/\/?$/, '/')}`,
    ...(options.socket ? ['--listen-addr=', `--listen-unix=${socket}`] : [`--listen-addr=127.0.0.1:${port}`]),
    '--debug-addr=-',
    '--state-dir=-',
    '--telemetry=disable',
    '--log-level=warn',
  ]);
  if (!options.socket) return started(managed, port, `mongodb://127.0.0.1:${port}/${database}`, 'ferretdb');
  try {
    await waitForSocket(socket, 20_000, managed.child);
  } catch (err) {
    await managed.stop();
    throw new Error(`ferretdb did not start: ${(err as Error).message}\n${recentOutput(managed)}`, { cause: err });
  }
  return { url: `mongodb://${encodeURIComponent(socket)}/${database}`, port, pid: managed.child.pid, stop: () => managed.stop() };
}
