import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalDeployment, testIsolation } from '@pds/devkit';
import { Redis } from 'ioredis';
import t from 'tap';
import { readStream } from './harness.js';

const TOKEN = 'process-test-token-0123456789-abcdefghijklmnop';

/**
 * The embedded default as `npm run demo` starts it: its own stores (Redis with a user per service,
 * FerretDB on a unix socket) in a data folder, and the three services.
 */
t.test('the three services started as their images start them run a real deployment', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'pds-proc-'));
  await chmod(scratch, 0o711); // jobs run as their slot's uid and must reach their folders
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const deployment = await startLocalDeployment(
    {
      ...process.env,
      REDIS_URL: undefined,
      MONGO_URL: undefined,
      ADMIN_TOKEN: TOKEN,
      PULUMI_BACKEND_URL: `file://${join(scratch, 'state')}`,
      WORK_DIR: join(scratch, 'work'),
      RUNNER_ISOLATION: testIsolation().isolation,
      LOG_LEVEL: 'warn',
    },
    () => undefined,
    { dataDir: join(scratch, 'data') },
  );
  t.teardown(() => deployment.stop());
  t.match(deployment.env.MONGO_URL, /^mongodb:\/\/%2F.*ferretdb\.sock\//, 'the store is a unix socket');
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${deployment.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });

  const gatewayHttp = deployment.gatewayUrl.replace(/^ws/, 'http');
  for (const service of [deployment.apiUrl, gatewayHttp]) {
    t.equal((await fetch(`${service}/health`)).status, 200, `${service}/health`);
    t.same(await (await fetch(`${service}/ready`)).json(), { status: 'ok', mongo: 'ok', redis: 'ok' }, `${service}/ready`);
  }

  // Inside the default LOCAL_FILES_ROOT, WORK_DIR/files.
  const dir = join(scratch, 'work', 'files', 'proc');
  const created = await api('/v1/resources', {
    method: 'POST',
    headers: { 'content-type': 'application/yaml' },
    body: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: proc\nspec:\n  directory: ${dir}\n  files:\n    - path: a.txt\n      content: from processes\n`,
  });
  t.equal(created.status, 201);
  const resource = (await created.json()) as { id: string };
  const queued = await api(`/v1/resources/${resource.id}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ operation: 'up' }),
  });
  t.equal(queued.status, 202);
  const job = (await queued.json()) as { id: string };
  const { messages } = await readStream(`${deployment.gatewayUrl}/v1/jobs/${job.id}/stream`, TOKEN);
  t.equal(messages.at(-1)?.status, 'succeeded');
  t.ok(existsSync(join(dir, 'a.txt')));
  t.match(await (await fetch(`${deployment.apiUrl}/metrics`)).text(), /api_jobs_created_total\{operation="up"\} 1/);
  t.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'from processes');

  // Each service did all of that as its own Redis user, never refused (a refusal a service only
  // logs would show here): its rules are enough, as well as least.
  const admin = new Redis(deployment.redisAdminUrl as string);
  t.teardown(() => admin.quit());
  t.same(await admin.acl('LOG'), [], 'no command of any service was refused');
  const users = ((await admin.acl('USERS')) as string[]).sort();
  t.same(users, ['admin', 'api', 'default', 'runner', 'stream-gateway']);
});
