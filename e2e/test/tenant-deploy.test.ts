import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackBackend } from '@pds/runner';
import t from 'tap';
import { fileSetManifest, startStack, waitForJob } from './harness.js';

/**
 * With the real CLI: two tenants deploy a resource of the same name on the same stack FQDN side by
 * side (each its own state and files); a tenant held to one running job at a time runs its jobs one
 * after the other, while another tenant's run at once.
 */
t.test('tenants deploy side by side with the real CLI, each within its limits', async (t) => {
  const stack = await startStack(t);
  const call = async (method: 'POST' | 'PUT' | 'GET', url: string, payload?: object | string) => {
    const res = await stack.api.inject({
      method,
      url,
      headers: { ...stack.auth, ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
      ...(payload !== undefined ? { payload } : {}),
    });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  for (const name of ['acme', 'beta']) await call('POST', '/v1/tenants', { name });
  await call('PUT', '/v1/tenants/acme/policy', { maxConcurrentJobs: 1 });
  const root = await mkdtemp(join(tmpdir(), 'pds-tenants-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));

  const deploy = async (tenant: string, name: string, delayMs = 0) => {
    const resource = await call(
      'POST',
      `/v1/resources?tenant=${tenant}`,
      fileSetManifest(name, join(root, `${tenant}-${name}`), [{ path: 'who.txt', content: `${tenant} ${name}`, delayMs }]),
    );
    return { resource, job: await call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'up' }) };
  };
  const finished = (id: string) => waitForJob(stack.models, id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);

  // One name, one FQDN, two tenants.
  const [a, b] = [await deploy('acme', 'web'), await deploy('beta', 'web')];
  t.equal(a.resource.stackFqdn, b.resource.stackFqdn);
  for (const { job } of [a, b]) t.equal((await finished(job.id)).status, 'succeeded');
  t.equal(await readFile(join(root, 'acme-web', 'who.txt'), 'utf8'), 'acme web');
  t.equal(await readFile(join(root, 'beta-web', 'who.txt'), 'utf8'), 'beta web');
  const stateOf = (tenant: string) => stackBackend(stack.config.PULUMI_BACKEND_URL, `${tenant}/${a.resource.stackFqdn}`).dir!;
  t.ok((await stat(join(stateOf('acme'), '.pulumi'))).isDirectory(), "acme's stack state is in its own folder");
  t.ok((await stat(join(stateOf('beta'), '.pulumi'))).isDirectory(), "beta's too");
  t.not(stateOf('acme'), stateOf('beta'));

  // acme runs one job at a time; beta, with no limit, runs its jobs at once (the control).
  const slow = 2_000;
  const acmeJobs = await Promise.all(['s1', 's2', 's3'].map((n) => deploy('acme', `${n}-${randomUUID().slice(0, 4)}`, slow)));
  const betaJobs = await Promise.all(['s1', 's2'].map((n) => deploy('beta', `${n}-${randomUUID().slice(0, 4)}`, slow)));
  const spans = async (jobs: { job: { id: string } }[]) =>
    (await Promise.all(jobs.map(({ job }) => finished(job.id)))).map((j) => {
      t.equal(j.status, 'succeeded', `job ${j._id}`);
      return [j.startedAt!.getTime(), j.finishedAt!.getTime()] as const;
    });
  const overlaps = (list: (readonly [number, number])[]) =>
    list.some(([s1, e1], i) => list.some(([s2, e2], k) => k !== i && s1 < e2 && s2 < e1));
  const acmeSpans = await spans(acmeJobs);
  const betaSpans = await spans(betaJobs);
  t.notOk(overlaps(acmeSpans), `acme's three jobs ran one at a time: ${JSON.stringify(acmeSpans)}`);
  t.ok(overlaps(betaSpans), `beta's two jobs ran at once: ${JSON.stringify(betaSpans)}`);
});
