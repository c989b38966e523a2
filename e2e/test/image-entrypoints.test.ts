/**
 * Without a Docker engine, the images' wiring is exercised by starting each service exactly as its
 * Dockerfile target does — its CMD, its ENV, the environment names compose and Kubernetes give it —
 * with the image's paths mapped onto this checkout, and running one real deployment through them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, parseDockerfile, recentOutput, startProcess, testIsolation, toolPath, waitForPort } from '@pds/devkit';
import { testMongo, testRedis } from '@pds/devkit/tap';
import { repoRoot } from '@pds/shared';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { readStream } from './harness.js';

const TOKEN = 'image-test-token-0123456789-abcdefghijklmnop';

t.test("the services started with their images' commands and environment run a real deployment", async (t) => {
  const [redisUrl, mongoUrl, scratch] = await Promise.all([testRedis(t), testMongo(t), mkdtemp(join(tmpdir(), 'pds-image-'))]);
  await chmod(scratch, 0o711); // jobs run as their slot's uid and must reach their folders
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const stages = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  // Where the image's folders are in this checkout.
  const mapPath = (value: string) =>
    value
      .replaceAll('/opt/pulumi/pulumi', toolPath('pulumi'))
      .replaceAll('/opt/pulumi', dirname(toolPath('pulumi')))
      .replaceAll('/var/lib/pulumi-deploy', scratch)
      .replace(/(^|[:=])\/app(?=\/|$)/g, `$1${repoRoot.replace(/\/$/, '')}`);
  // The environment compose gives every service (its x-service-env names), with local values.
  const compose = parseYaml(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment: Record<string, string> }>;
  };
  const local: Record<string, string> = {
    MONGO_URL: mongoUrl,
    REDIS_URL: redisUrl,
    ADMIN_TOKEN: TOKEN,
    CREDENTIALS_KEY: Buffer.alloc(32, 5).toString('base64'),
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    LOCAL_FILES_ROOT: join(scratch, 'files'),
  };

  /** The secrets each service uses, and so the only ones compose gives it. */
  const SECRETS_OF: Record<string, string[]> = {
    api: ['ADMIN_TOKEN', 'CREDENTIALS_KEY'],
    runner: ['CREDENTIALS_KEY'],
    'stream-gateway': ['ADMIN_TOKEN'],
  };
  const urls: Record<string, string> = {};
  for (const name of ['api', 'runner', 'stream-gateway']) {
    const stage = stages.get(name)!;
    const port = await freePort();
    const imageEnv = Object.fromEntries(Object.entries(stage.env).map(([k, v]) => [k, mapPath(v)]));
    const composeNames = Object.keys(compose.services[name]!.environment);
    // The image's PATH additions go in front of this machine's PATH (node lives elsewhere here).
    const env: NodeJS.ProcessEnv = { ...imageEnv, PATH: `${imageEnv.PATH ?? ''}${process.env.PATH}`, PORT: String(port) };
    delete env.NODE_ENV; // dev dependencies are present here; production mode changes nothing we test
    for (const key of composeNames) if (local[key] !== undefined) env[key] = local[key];
    env.RUNNER_ISOLATION = testIsolation().isolation;
    for (const key of ['MONGO_URL', 'REDIS_URL', ...SECRETS_OF[name]!]) t.ok(composeNames.includes(key), `compose gives ${name} ${key}`);
    for (const key of ['ADMIN_TOKEN', 'CREDENTIALS_KEY'].filter((k) => !SECRETS_OF[name]!.includes(k))) {
      t.notOk(composeNames.includes(key), `compose does not give ${name} ${key}`);
    }
    const [command, ...args] = stage.cmd!;
    t.equal(command, 'node');
    const managed = startProcess(process.execPath, args, { cwd: repoRoot, env });
    t.teardown(() => managed.stop());
    await waitForPort(port, 30_000, managed.child).catch((err: Error) => {
      throw new Error(`${name} did not start as its image does: ${err.message}\n${recentOutput(managed)}`);
    });
    urls[name] = `http://127.0.0.1:${port}`;
    t.equal((await fetch(`${urls[name]}/health`)).status, 200, `${name} answers its HEALTHCHECK path`);
  }

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${urls.api}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
  const dir = join(scratch, 'files', 'image-wiring');
  const created = await api('/v1/resources', {
    method: 'POST',
    headers: { 'content-type': 'application/yaml' },
    body: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: image-wiring\nspec:\n  directory: ${dir}\n  files:\n    - path: a.txt\n      content: from the image commands\n`,
  });
  t.equal(created.status, 201);
  const resource = (await created.json()) as { id: string };
  const queued = await api(`/v1/resources/${resource.id}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"operation":"up"}',
  });
  const job = (await queued.json()) as { id: string };
  const { messages } = await readStream(`${urls['stream-gateway']!.replace(/^http/, 'ws')}/v1/jobs/${job.id}/stream`, TOKEN);
  t.equal(messages.at(-1)?.status, 'succeeded', JSON.stringify(messages.slice(-3)));
  t.ok(existsSync(join(dir, 'a.txt')));
  t.ok(existsSync(join(scratch, 'state')), "the runner used the image's file state backend (on its volume)");
});
