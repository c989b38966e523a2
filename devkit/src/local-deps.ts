import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '@pds/shared';
import { freePort, type Managed, recentOutput, startProcess, waitForPort } from './processes.js';

/** Where scripts/ensure-tools.sh puts the pinned tools. */
export const toolsBin = join(repoRoot, '.tools', 'bin');

export function toolPath(name: 'pulumi' | 'ferretdb' | 'redis-server' | 'st' | 'kustomize'): string {
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

/** A private redis-server on a free (or given) port, with no persistence. */
export async function startLocalRedis(options: { port?: number } = {}): Promise<LocalServer> {
  const port = options.port ?? (await freePort());
  const managed = startProcess(toolPath('redis-server'), [
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
  return started(managed, port, `redis://127.0.0.1:${port}`, 'redis-server');
}

/** A private FerretDB (MongoDB wire protocol) backed by SQLite files in `dataDir`. */
export async function startLocalFerretDb(options: { dataDir: string; port?: number; database?: string }): Promise<LocalServer> {
  const port = options.port ?? (await freePort());
  await mkdir(options.dataDir, { recursive: true });
  const managed = startProcess(toolPath('ferretdb'), [
    '--handler=sqlite',
    `--sqlite-url=file:${options.dataDir.replace(/\/?$/, '/')}`,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-',
    '--state-dir=-',
    '--telemetry=disable',
    '--log-level=warn',
  ]);
  const database = options.database ?? 'pulumi-deploy';
  return started(managed, port, `mongodb://127.0.0.1:${port}/${database}`, 'ferretdb');
}
