import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** The repository root, for defaults that point at project-local folders in local use. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)));

/** Every setting of every service, read from the environment (names from ARCHITECTURE.md). */
export const ConfigSchema = Type.Object({
  MONGO_URL: Type.String({ default: 'mongodb://127.0.0.1:27017/pulumi-deploy' }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379' }),
  /**
   * The bootstrap admin token (API and gateway only; the runner never gets it). No default: at least
   * 32 characters, not a placeholder. Only the embedded launcher makes one (per data folder).
   */
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 32 })),
  /** Seals credentials: 32 random bytes, base64 (`openssl rand -base64 32`). Without it, credentials are refused. */
  CREDENTIALS_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' })),
  /** During a key rotation: the keys before CREDENTIALS_KEY, comma-separated, still used to open. */
  CREDENTIALS_KEY_PREVIOUS: Type.Optional(Type.String({ pattern: '^([A-Za-z0-9+/]{43}=)(,[A-Za-z0-9+/]{43}=)*$' })),
  PULUMI_BACKEND_URL: Type.String({ default: `file://${repoRoot}.data/pulumi-state` }),
  /**
   * Names of runner environment variables a job's Pulumi processes also get, comma-separated (the
   * state backend's settings, e.g. `AWS_PROFILE,AWS_REGION` for an S3 backend). Besides these, a job
   * gets system basics (PATH, locale, CA bundles, proxies) and nothing else of the runner's environment.
   */
  JOB_ENV_ALLOW: Type.String({ pattern: '^([A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*)?$', default: '' }),
  PULUMI_CONFIG_PASSPHRASE: Type.String({ default: '' }),
  /** The pulumi binary; its folder must also hold pulumi-resource-pulumi-nodejs. */
  PULUMI_BIN: Type.String({ default: 'pulumi' }),
  MODULES_DIR: Type.String({ default: `${repoRoot}modules` }),
  /** Scratch space for per-job folders (Pulumi home, credential files). */
  WORK_DIR: Type.String({ default: `${repoRoot}.data/work` }),
  /**
   * Where kinds that write local files (LocalFileSet) may write: their folders must be inside it
   * (checked when a manifest is created or replaced). Default: WORK_DIR/files.
   */
  LOCAL_FILES_ROOT: Type.Optional(Type.String({ minLength: 1 })),
  RUNNER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
  /**
   * `sandbox` (the default): each job's processes run as a uid of their own (one per runner slot), in
   * namespaces of their own (network, PID, IPC, mount) and within the slot's cgroup limits
   * (docs/security.md). `uid`: a uid of their own only, with the runner's network and no limits:
   * where the kernel or the platform gives no namespaces or cgroups (said loudly at start). `none`
   * runs them as the runner's own user: only where the runner cannot switch users (a laptop without
   * root), and it says so loudly.
   */
  RUNNER_ISOLATION: Type.Union([Type.Literal('sandbox'), Type.Literal('uid'), Type.Literal('none')], { default: 'sandbox' }),
  /**
   * IPv4 ranges jobs may reach although they are not public (comma-separated CIDRs; none by default):
   * a job reaches the internet, never loopback, link-local (cloud metadata), private ranges or the
   * runner machine's own addresses unless listed here (the machine's addresses never).
   */
  JOB_EGRESS_ALLOW: Type.String({ pattern: '^([0-9.]+(/[0-9]{1,2})?(,[0-9.]+(/[0-9]{1,2})?)*)?$', default: '' }),
  /** A sandboxed job's memory (MiB; past it the job ends `failed`, reason `memory_limit`); its private /tmp counts in it. */
  JOB_MEMORY_MAX_MB: Type.Integer({ minimum: 64, maximum: 1_048_576, default: 4_096 }),
  /** A sandboxed job's CPU time per second, in cores. */
  JOB_CPUS: Type.Number({ minimum: 0.05, maximum: 1_024, default: 2 }),
  /** A sandboxed job's processes and threads at once (pids.max). */
  JOB_PIDS_MAX: Type.Integer({ minimum: 32, maximum: 4_194_304, default: 2_048 }),
  /** What a sandboxed job may write in its folders, in MiB (past it the job ends `failed`, reason `disk_limit`). */
  JOB_DISK_MAX_MB: Type.Integer({ minimum: 16, maximum: 16_777_216, default: 4_096 }),
  /** The size of a sandboxed job's private /tmp, /var/tmp and /dev/shm, each, in MiB (memory-backed). */
  JOB_TMP_MAX_MB: Type.Integer({ minimum: 1, maximum: 1_048_576, default: 256 }),
  /** Where a runner keeps its slots' network namespaces (root's only; a private mount point). */
  RUNNER_SANDBOX_DIR: Type.String({ default: '/run/pulumi-deploy' }),
  /**
   * The uids (and gids) jobs run as: RUNNER_UID_BASE up to RUNNER_UID_BASE + RUNNER_UID_COUNT - 1.
   * Each runner process leases RUNNER_CONCURRENCY of them for its lifetime, so runners sharing a
   * machine never share a uid.
   */
  RUNNER_UID_BASE: Type.Integer({ minimum: 1000, maximum: 2_000_000_000, default: 61_000 }),
  RUNNER_UID_COUNT: Type.Integer({ minimum: 1, maximum: 65_536, default: 1_000 }),
  JOB_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, default: 600 }),
  /** The shortest interval a drift schedule may have (its cron's runs at least this far apart). */
  DRIFT_MIN_INTERVAL_SECONDS: Type.Integer({ minimum: 1, maximum: 7 * 86_400, default: 3_600 }),
  /**
   * The longest a scheduled drift check waits after its cron fires (each resource its own wait, at
   * most a tenth of its interval), so that schedules sharing a cron do not all check at once; 0: none.
   */
  DRIFT_SPREAD_SECONDS: Type.Integer({ minimum: 0, maximum: 3_600, default: 300 }),
  /** The drift schedules one tenant may have (a tenant's policy `maxDriftSchedules` sets its own). */
  DRIFT_MAX_SCHEDULES_PER_TENANT: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 500 }),
  /** Private address ranges webhooks may reach nonetheless (comma-separated CIDRs; none by default). */
  WEBHOOK_ALLOWED_CIDRS: Type.String({ pattern: '^([0-9A-Fa-f:.]+(/[0-9]{1,3})?(,[0-9A-Fa-f:.]+(/[0-9]{1,3})?)*)?$', default: '' }),
  /** Tries per webhook message, waits doubling from WEBHOOK_RETRY_DELAY_MS (8 tries: about 21 minutes in all). */
  WEBHOOK_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 20, default: 8 }),
  WEBHOOK_RETRY_DELAY_MS: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 10_000 }),
  /** How long one try waits for the receiver's answer. */
  WEBHOOK_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 60, default: 10 }),
  /** How long publishing a template version waits for its smoke preview on a runner before giving up (503). */
  PUBLISH_CHECK_TIMEOUT_SECONDS: Type.Integer({ minimum: 10, maximum: 3600, default: 300 }),
  /**
   * How long history is kept, in days (0: for ever): the lines of ended jobs, ended jobs themselves
   * (their result and summary; their lines go with them), and audit entries. Swept by the runners.
   */
  HISTORY_LINES_DAYS: Type.Integer({ minimum: 0, default: 30 }),
  HISTORY_JOBS_DAYS: Type.Integer({ minimum: 0, default: 90 }),
  HISTORY_AUDIT_DAYS: Type.Integer({ minimum: 0, default: 365 }),
  /** How often a runner sweeps old history (one runner at a time), and how fast it may delete. */
  HISTORY_SWEEP_INTERVAL_SECONDS: Type.Integer({ minimum: 60, default: 3_600 }),
  HISTORY_SWEEP_DELETES_PER_SECOND: Type.Integer({ minimum: 1, maximum: 100_000, default: 500 }),
  /** The longest `timeoutSeconds` a deployer may ask for (admins: up to 24 h); a runner slot is held that long at most. */
  JOB_TIMEOUT_MAX_DEPLOYER_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 3_600 }),
  /** How often a runner renews its locks and heartbeats; a job is declared lost after 4 missed beats. */
  RUNNER_HEARTBEAT_SECONDS: Type.Number({ exclusiveMinimum: 0, default: 3 }),
  /** After SIGINT (Pulumi's graceful cancel), how long before the run is killed. */
  CANCEL_GRACE_SECONDS: Type.Integer({ minimum: 0, default: 30 }),
  /**
   * How long a runner rides out an unreachable MongoDB or Redis (retrying with backoff) before it
   * gives up on a job's writes; a preview or refresh given up on this way is run again.
   */
  OUTAGE_TOLERANCE_SECONDS: Type.Number({ minimum: 0, default: 60 }),
  /** The largest manifest the API accepts, in bytes (413 past it). */
  MANIFEST_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 64 * 1024 }),
  /**
   * Where browsers reach the stream gateway (`ws://` or `wss://`, no path): the console opens job
   * streams there, and the console's Content-Security-Policy allows connecting to it. Unset: the
   * gateway is behind the same origin as the API (an ingress routing /v1/jobs/:id/stream to it).
   */
  CONSOLE_GATEWAY_URL: Type.Optional(Type.String({ pattern: '^wss?://[^/?#\\s]+/?$' })),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union([LogLevel], { default: 'info' }),
});

export type Config = Static<typeof ConfigSchema>;

/**
 * How many beats (RUNNER_HEARTBEAT_SECONDS) a runner's leases last without renewal: its jobs'
 * heartbeats, its stacks' locks, its tenants' places. A runner silent this long is lost.
 */
export const LEASE_BEATS = 4;

/** The folder local-file kinds write into: LOCAL_FILES_ROOT, else WORK_DIR/files. */
export function localFilesRoot(config: Pick<Config, 'LOCAL_FILES_ROOT' | 'WORK_DIR'>): string {
  return config.LOCAL_FILES_ROOT ?? `${config.WORK_DIR.replace(/\/+$/, '')}/files`;
}

/** Settings that hold a secret: each may also be given as `NAME_FILE`, a path to read it from (Kubernetes, Docker secrets). */
export const SECRET_SETTINGS = [
  'ADMIN_TOKEN',
  'CREDENTIALS_KEY',
  'CREDENTIALS_KEY_PREVIOUS',
  'PULUMI_CONFIG_PASSPHRASE',
  'MONGO_URL',
  'REDIS_URL',
] as const;

export type Service = 'api' | 'runner' | 'stream-gateway';

/**
 * Which secrets each service uses; the others are dropped from its config even when the
 * environment has them (one shared .env must not hand the gateway the credentials key).
 */
const SERVICE_SECRETS: Record<Service, { uses: (keyof Config)[]; requires: (keyof Config)[] }> = {
  api: { uses: ['ADMIN_TOKEN', 'CREDENTIALS_KEY', 'CREDENTIALS_KEY_PREVIOUS'], requires: ['ADMIN_TOKEN'] },
  runner: { uses: ['CREDENTIALS_KEY', 'CREDENTIALS_KEY_PREVIOUS', 'PULUMI_CONFIG_PASSPHRASE'], requires: [] },
  'stream-gateway': { uses: ['ADMIN_TOKEN'], requires: [] },
};

/** Values copied from an example file or a tutorial; a token that matches one is refused. */
const PLACEHOLDER = /change[-_ ]?me|replace[-_ ]?me|placeholder|example|your[-_ ]?(admin[-_ ]?)?token|^(x+|0+|secret|password|token)$/i;

/** Why a token is too weak to be the bootstrap admin token, or undefined. */
export function weakTokenReason(token: string): string | undefined {
  if (token.length < 32) return 'must be at least 32 characters';
  if (PLACEHOLDER.test(token)) return 'is a placeholder; generate one with `openssl rand -base64 32`';
  if (new Set(token).size < 8) return 'has too few distinct characters to be random';
  return undefined;
}

/** Raised when the environment does not describe a valid configuration; names every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Validates the environment into one typed config. Unknown variables are ignored;
 * `overrides` lets a launcher or a test set values without touching process.env.
 */
export function loadConfig(env: Record<string, string | undefined>, overrides: Partial<Config> = {}): Config {
  const known = Object.keys(ConfigSchema.properties);
  const picked: Record<string, unknown> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  Object.assign(picked, secretsFromFiles(env));
  const candidate = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, { ...picked, ...overrides }));
  const errors = [...Value.Errors(ConfigSchema, candidate)];
  if (errors.length > 0) {
    const detail = errors.map((e) => `${e.path.slice(1) || '(root)'}: ${e.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${detail}`);
  }
  const config = candidate as Config;
  const weak = config.ADMIN_TOKEN === undefined ? undefined : weakTokenReason(config.ADMIN_TOKEN);
  if (weak) throw new ConfigError(`invalid configuration: ADMIN_TOKEN ${weak}`);
  return config;
}

/** `NAME_FILE` settings read from their files (one trailing newline dropped); naming both forms is an error. */
function secretsFromFiles(env: Record<string, string | undefined>): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of SECRET_SETTINGS) {
    const path = env[`${name}_FILE`];
    if (!path) continue;
    if (env[name]) throw new ConfigError(`invalid configuration: set ${name} or ${name}_FILE, not both`);
    try {
      found[name] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`invalid configuration: ${name}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }
  return found;
}

/**
 * The config of one service: what `loadConfig` reads, less the secrets the service does not use,
 * and refused when a secret it needs is missing.
 */
export function loadServiceConfig(service: Service, env: Record<string, string | undefined>, overrides: Partial<Config> = {}): Config {
  const config = loadConfig(env, overrides);
  const { uses, requires } = SERVICE_SECRETS[service];
  for (const name of requires) {
    if (config[name] === undefined) throw new ConfigError(`invalid configuration: the ${service} needs ${name} (or ${name}_FILE)`);
  }
  for (const name of ['ADMIN_TOKEN', 'CREDENTIALS_KEY', 'CREDENTIALS_KEY_PREVIOUS'] as const) {
    if (!uses.includes(name)) delete config[name];
  }
  if (!uses.includes('PULUMI_CONFIG_PASSPHRASE')) config.PULUMI_CONFIG_PASSPHRASE = '';
  return config;
}
