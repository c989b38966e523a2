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
  ADMIN_TOKEN: Type.String({ minLength: 16, default: 'dev-admin-token-change-me' }),
  /** Seals credentials: 32 random bytes, base64 (`openssl rand -base64 32`). Without it, credentials are refused. */
  CREDENTIALS_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' })),
  /** During a key rotation: the keys before CREDENTIALS_KEY, comma-separated, still used to open. */
  CREDENTIALS_KEY_PREVIOUS: Type.Optional(Type.String({ pattern: '^([A-Za-z0-9+/]{43}=)(,[A-Za-z0-9+/]{43}=)*$' })),
  PULUMI_BACKEND_URL: Type.String({ default: `file://${repoRoot}.data/pulumi-state` }),
  PULUMI_CONFIG_PASSPHRASE: Type.String({ default: '' }),
  /** The pulumi binary; its folder must also hold pulumi-resource-pulumi-nodejs. */
  PULUMI_BIN: Type.String({ default: 'pulumi' }),
  MODULES_DIR: Type.String({ default: `${repoRoot}modules` }),
  /** Scratch space for per-job folders (Pulumi home, credential files). */
  WORK_DIR: Type.String({ default: `${repoRoot}.data/work` }),
  RUNNER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
  JOB_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, default: 600 }),
  /** How often a runner renews its locks and heartbeats; a job is declared lost after 4 missed beats. */
  RUNNER_HEARTBEAT_SECONDS: Type.Number({ exclusiveMinimum: 0, default: 10 }),
  /** After SIGINT (Pulumi's graceful cancel), how long before the run is killed. */
  CANCEL_GRACE_SECONDS: Type.Integer({ minimum: 0, default: 30 }),
  /**
   * How long a runner rides out an unreachable MongoDB or Redis (retrying with backoff) before it
   * gives up on a job's writes; a preview or refresh given up on this way is run again.
   */
  OUTAGE_TOLERANCE_SECONDS: Type.Number({ minimum: 0, default: 60 }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union([LogLevel], { default: 'info' }),
});

export type Config = Static<typeof ConfigSchema>;

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
  const candidate = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, { ...picked, ...overrides }));
  const errors = [...Value.Errors(ConfigSchema, candidate)];
  if (errors.length > 0) {
    const detail = errors.map((e) => `${e.path.slice(1) || '(root)'}: ${e.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${detail}`);
  }
  return candidate as Config;
}
