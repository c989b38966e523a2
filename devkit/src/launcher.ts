import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalFerretDb, startLocalRedis, toolPath } from './local-deps.js';
import { freePort, type Managed, recentOutput, startProcess, waitForPort } from './processes.js';
import { REDIS_DEFAULT_USER_OFF, redisUserDirective, repoRoot, STORE_USERS, type StoreUser } from '@pds/shared';

export interface LocalDeployment {
  apiUrl: string;
  gatewayUrl: string;
  env: Record<string, string>;
  /** The embedded Redis's `admin` user (for tests and people), when the launcher started it. */
  redisAdminUrl?: string;
  stop(): Promise<void>;
}

/** Each service and the secrets it must not be given (as in compose and Kubernetes). */
const SERVICES = [
  { name: 'api', entry: 'services/api/dist/src/server.js', without: [] },
  { name: 'runner', entry: 'services/runner/dist/src/main.js', without: ['ADMIN_TOKEN'] },
  { name: 'stream-gateway', entry: 'services/stream-gateway/dist/src/server.js', without: ['CREDENTIALS_KEY', 'CREDENTIALS_KEY_PREVIOUS'] },
] as const;

/** Where the stores are, as each service connects to them. */
interface StoreUrls {
  redis: Record<StoreUser, string>;
  mongo: string;
}

/**
 * The embedded default: starts redis-server and FerretDB (data under `dataDir`, .data/ unless
 * told) unless REDIS_URL / MONGO_URL point elsewhere, then the three services as separate
 * processes, each started the way its image starts it (`node <entry>` with the environment of
 * ARCHITECTURE.md).
 */
export async function startLocalDeployment(
  env: NodeJS.ProcessEnv = process.env,
  log = (line: string) => console.error(line),
  options: { dataDir?: string } = {},
): Promise<LocalDeployment> {
  const dataDir = options.dataDir ?? join(repoRoot, '.data');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => undefined);
  };
  try {
    const stores = await startEmbeddedStores(env, dataDir, stops, log);
    const [apiPort, gatewayPort, runnerPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const ports = { api: apiPort, 'stream-gateway': gatewayPort, runner: runnerPort };
    const shared: Record<string, string> = {
      MONGO_URL: stores.mongo,
      PULUMI_BIN: env.PULUMI_BIN ?? toolPath('pulumi'),
      ADMIN_TOKEN: env.ADMIN_TOKEN ?? (await localSecret(dataDir, 'admin.token', () => `pds_${randomBytes(32).toString('base64url')}`)),
      CREDENTIALS_KEY: env.CREDENTIALS_KEY ?? (await localSecret(dataDir, 'credentials.key', () => randomBytes(32).toString('base64'))),
      LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
      HOST: '127.0.0.1',
      // Everything of a run under its data folder (the defaults point at the repository's .data/).
      PULUMI_BACKEND_URL: env.PULUMI_BACKEND_URL ?? `file://${join(dataDir, 'pulumi-state')}`,
      WORK_DIR: env.WORK_DIR ?? join(dataDir, 'work'),
      // Where LocalFileSet may write: .data/files, unless a WORK_DIR given makes it WORK_DIR/files.
      ...(env.LOCAL_FILES_ROOT || !env.WORK_DIR ? { LOCAL_FILES_ROOT: env.LOCAL_FILES_ROOT ?? join(dataDir, 'files') } : {}),
    };
    const processes: Managed[] = [];
    for (const service of SERVICES) {
      const serviceEnv: NodeJS.ProcessEnv = { ...env, ...shared, REDIS_URL: stores.redis[service.name], PORT: String(ports[service.name]) };
      // The console (served by the API) opens job streams on the gateway's own port.
      if (service.name === 'api') serviceEnv.CONSOLE_GATEWAY_URL = `ws://127.0.0.1:${gatewayPort}`;
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
    return {
      apiUrl: `http://127.0.0.1:${apiPort}`,
      gatewayUrl: `ws://127.0.0.1:${gatewayPort}`,
      env: { ...shared, REDIS_URL: stores.redis.api },
      ...(stores.redisAdmin ? { redisAdminUrl: stores.redisAdmin } : {}),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The embedded stores, each with a lock besides the jobs' own network (which has no route to them):
 * Redis takes a user per service (store-users.ts: each only the keys and commands it uses, its
 * password made for this data folder) and an `admin` user for people (.data/redis.password);
 * FerretDB listens only on a unix socket in its 0700 folder.
 */
async function startEmbeddedStores(
  env: NodeJS.ProcessEnv,
  dataDir: string,
  stops: (() => Promise<void>)[],
  log: (line: string) => void,
): Promise<StoreUrls & { redisAdmin?: string }> {
  let redis: Record<StoreUser, string>;
  let redisAdmin: string | undefined;
  if (env.REDIS_URL) {
    redis = { api: env.REDIS_URL, runner: env.REDIS_URL, 'stream-gateway': env.REDIS_URL };
  } else {
    const password = (name: string) => localSecret(dataDir, name, () => randomBytes(24).toString('hex'));
    const admin = await password('redis.password');
    const passwords = Object.fromEntries(
      await Promise.all(STORE_USERS.map(async (user) => [user, await password(`redis-${user}.password`)] as const)),
    );
    const server = await startLocalRedis({
      users: [
        REDIS_DEFAULT_USER_OFF,
        `admin on >${admin} ~* &* +@all`,
        ...STORE_USERS.map((user) => redisUserDirective(user, passwords[user] as string)),
      ],
    });
    stops.push(server.stop);
    const urlOf = (user: string, secret: string) => `redis://${user}:${secret}@127.0.0.1:${server.port}`;
    redis = Object.fromEntries(STORE_USERS.map((user) => [user, urlOf(user, passwords[user] as string)])) as Record<StoreUser, string>;
    redisAdmin = urlOf('admin', admin);
    log(
      `local redis-server on 127.0.0.1:${server.port}, a user per service (for people: redis-cli --user admin --pass "$(cat ${join(dataDir, 'redis.password')})")`,
    );
  }
  let mongo = env.MONGO_URL;
  if (!mongo) {
    const ferret = await startLocalFerretDb({ dataDir: join(dataDir, 'ferretdb'), socket: true });
    stops.push(ferret.stop);
    mongo = ferret.url;
    log(`local FerretDB on the unix socket ${join(dataDir, 'ferretdb', 'ferretdb.sock')} (data in the same folder)`);
  }
  return { redis, mongo, ...(redisAdmin ? { redisAdmin } : {}) };
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
