/** Runner processes for the suite and the benches: the compiled runner, as production starts it. */
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '@pds/shared';
import { jobWritableFile } from './job-writable.js';
import { freePort, type Managed, startProcess, waitForPort } from './processes.js';
import { standInIsolation, testIsolation } from './test-isolation.js';

/** The scripted stand-in for `pulumi` (e2e/fixtures/stand-in-pulumi.sh), for scheduling tests and benches. */
export const STAND_IN_PULUMI = fileURLToPath(new URL('../../../e2e/fixtures/stand-in-pulumi.sh', import.meta.url));

/** Starts one runner process with `env` (over this process's), once it listens. */
export async function startRunnerProcess(env: Record<string, string>): Promise<Managed> {
  const port = await freePort();
  const runner = startProcess(process.execPath, [join(repoRoot, 'services/runner/dist/src/main.js')], {
    env: { ...process.env, RUNNER_ISOLATION: testIsolation().isolation, ...env, PORT: String(port), HOST: '127.0.0.1' },
  });
  await waitForPort(port, 30_000, runner.child);
  return runner;
}

/**
 * Starts `count` runner processes on the given stores with the stand-in for `pulumi` (each run takes
 * `standInMs` and is logged to `log`, `runs.log` in `scratch` unless given), `slots` jobs each.
 */
export async function startStandInRunnerProcesses(options: {
  mongoUrl: string;
  redisUrl: string;
  /** The API's LOCAL_FILES_ROOT: the runner checks a job's folder again on its own disk. */
  filesRoot: string;
  scratch: string;
  count: number;
  slots: number;
  standInMs: number;
  log?: string;
}): Promise<{ runners: Managed[]; log: string }> {
  const logPath = options.log ?? join(options.scratch, 'runs.log');
  const log = jobWritableFile(dirname(logPath), basename(logPath));
  const env = {
    MONGO_URL: options.mongoUrl,
    REDIS_URL: options.redisUrl,
    PULUMI_BIN: STAND_IN_PULUMI,
    RUNNER_ISOLATION: standInIsolation(),
    STAND_IN_LOG: log,
    STAND_IN_MS: String(options.standInMs),
    JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS',
    RUNNER_CONCURRENCY: String(options.slots),
    WORK_DIR: join(options.scratch, 'work'),
    LOCAL_FILES_ROOT: options.filesRoot,
    LOG_LEVEL: 'warn',
  };
  const runners = await Promise.all(Array.from({ length: options.count }, () => startRunnerProcess(env)));
  return { runners, log };
}
