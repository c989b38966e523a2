import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalFerretDb, startLocalRedis, toolPath } from './local-deps.js';
import { freePort, type Managed, recentOutput, startProcess, waitForPort } from './processes.js';
import { repoRoot } from '@pds/shared';

export interface LocalDeployment {
  apiUrl: string;
  gatewayUrl: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Each service and the secrets it must not be given (as in compose and Kubernetes). */
const SERVICES = [
  { name: 'api', entry: 'services/api/dist/src/server.js', without: [] },
  { name: 'runner', entry: 'services/runner/dist/src/main.js', without: ['ADMIN_TOKEN'] },
  { name: 'stream-gateway', entry: 'services/stream-gateway/dist/src/server.js', without: ['CREDENTIALS_KEY', 'CREDENTIALS_KEY_PREVIOUS'] },
] as const;

/**
 * The embedded default: starts redis-server and FerretDB (data under .data/) unless REDIS_URL /
 * MONGO_URL point elsewhere, then the three services as separate processes, each started the way
 * its image starts it (`node <entry>` with the environment of ARCHITECTURE.md).
 */
export async function startLocalDeployment(
  env: NodeJS.ProcessEnv = process.env,
  log = (line: string) => console.error(line),
): Promise<LocalDeployment> {
  const dataDir = join(repoRoot, '.data');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => undefined);
  };
  try {
    let redisUrl = env.REDIS_URL;
    if (!redisUrl) {
      // Every client must give the password made for this data folder (a second lock besides the
      // jobs' own network, which has no route to it: docs/security.md).
      const password = await localSecret(dataDir, 'redis.password', () => randomBytes(24).toString('base64url'));
      const redis = await startLocalRedis({ password });
      stops.push(redis.stop);
      redisUrl = redis.url;
      log(`local redis-server on ${redis.shownUrl} (password in .data/redis.password)`);
    }
    let mongoUrl = env.MONGO_URL;
    if (!mongoUrl) {
      const ferret = await startLocalFerretDb({ dataDir: join(dataDir, 'ferretdb') });
      stops.push(ferret.stop);
      mongoUrl = ferret.url;
      log(`local FerretDB on ${ferret.url} (data in .data/ferretdb)`);
    }
    const [apiPort, gatewayPort, runnerPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const ports = { api: apiPort, 'stream-gateway': gatewayPort, runner: runnerPort };
    const shared: Record<string, string> = {
      MONGO_URL: mongoUrl,
      REDIS_URL: redisUrl,
      PULUMI_BIN: env.PULUMI_BIN ?? toolPath('pulumi'),
      ADMIN_TOKEN: env.ADMIN_TOKEN ?? (await localSecret(dataDir, 'admin.token', () => `pds_${randomBytes(32).toString('base64url')}`)),
      CREDENTIALS_KEY: env.CREDENTIALS_KEY ?? (await localSecret(dataDir, 'credentials.key', () => randomBytes(32).toString('base64'))),
      LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
      HOST: '127.0.0.1',
      // Where LocalFileSet may write: .data/files, unless a WORK_DIR given makes it WORK_DIR/files.
      ...(env.LOCAL_FILES_ROOT || !env.WORK_DIR ? { LOCAL_FILES_ROOT: env.LOCAL_FILES_ROOT ?? join(dataDir, 'files') } : {}),
    };
    const processes: Managed[] = [];
    for (const service of SERVICES) {
      const serviceEnv: NodeJS.ProcessEnv = { ...env, ...shared, PORT: String(ports[service.name]) };
      for (const name of service.without) delete serviceEnv[name];
      const managed = startProcess(process.execPath, ['--enable-source-maps', join(repoRoot, service.entry)], {
        cwd: repoRoot,
        env: serviceEnv,
      });
      processes.push(managed);
      stops.push(managed.stop);
    }
    await Promise.all(
      SERVICES.map((service, i) => {
        const managed = processes[i] as Managed;
        return waitForPort(ports[service.name], 30_000, managed.child).catch((err: Error) => {
          throw new Error(`${service.name} did not start: ${err.message}\n${recentOutput(managed)}`);
        });
      }),
    );
    log(`api on http://127.0.0.1:${apiPort}, stream-gateway on ws://127.0.0.1:${gatewayPort}, runner health on :${runnerPort}`);
    if (!env.ADMIN_TOKEN) log(`admin token (made for this data folder, kept in .data/admin.token): ${shared.ADMIN_TOKEN}`);
    return { apiUrl: `http://127.0.0.1:${apiPort}`, gatewayUrl: `ws://127.0.0.1:${gatewayPort}`, env: shared, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A secret of the embedded default (its ADMIN_TOKEN, its CREDENTIALS_KEY): made once, kept in the
 * local data folder (0600), so that it survives restarts (credentials stored in the local FerretDB
 * stay readable, the printed token keeps working). Never used in production, where these come from
 * the environment.
 */
async function localSecret(dataDir: string, name: string, make: () => string): Promise<string> {
  const path = join(dataDir, name);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    await mkdir(dataDir, { recursive: true });
    await writeFile(path, `${make()}\n`, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return (await readFile(path, 'utf8')).trim();
  }
}
