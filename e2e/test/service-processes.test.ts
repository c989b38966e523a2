import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalDeployment, testIsolation } from '@pds/devkit';
import { testMongo, testRedis } from '@pds/devkit/tap';
import t from 'tap';
import { readStream } from './harness.js';

const TOKEN = 'process-test-token-0123456789-abcdefghijklmnop';

t.test('the three services started as their images start them run a real deployment', async (t) => {
  const [redisUrl, mongoUrl, scratch] = await Promise.all([testRedis(t), testMongo(t), mkdtemp(join(tmpdir(), 'pds-proc-'))]);
  await chmod(scratch, 0o711); // jobs run as their slot's uid and must reach their folders
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const deployment = await startLocalDeployment(
    {
      ...process.env,
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      ADMIN_TOKEN: TOKEN,
      PULUMI_BACKEND_URL: `file://${join(scratch, 'state')}`,
      WORK_DIR: join(scratch, 'work'),
      RUNNER_ISOLATION: testIsolation().isolation,
      LOG_LEVEL: 'warn',
    },
    () => undefined,
  );
  t.teardown(() => deployment.stop());
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
});
