import { randomUUID } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackBackend } from '@pds/runner';
import type { ResourceDoc } from '@pds/shared';
import t from 'tap';
import { fileSetManifest, startStack, waitForJob, waitForResource as waitForResourceOf } from './harness.js';

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
  // Each tenant's folders are in its own area of LOCAL_FILES_ROOT (here the temporary folder).
  const run = randomUUID().slice(0, 8);
  const folderOf = (tenant: string, name: string) => join(tmpdir(), 'tenants', tenant, `${name}-${run}`);
  const made: string[] = [];
  t.teardown(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));

  const deploy = async (tenant: string, name: string, delayMs = 0) => {
    const resource = await call(
      'POST',
      `/v1/resources?tenant=${tenant}`,
      fileSetManifest(name, (made.push(folderOf(tenant, name)), folderOf(tenant, name)), [
        { path: 'who.txt', content: `${tenant} ${name}`, delayMs },
      ]),
    );
    return { resource, job: await call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'up' }) };
  };
  const waitForResource = (id: string, ready: (doc: ResourceDoc) => boolean) => waitForResourceOf(stack.models, id, ready, 60_000);
  /** The stack's life as the job left it: written on the resource just after the job's end. */
  const stackAfter = (resourceId: string, jobId: string) =>
    waitForResource(resourceId, (r) => r.stack?.jobId === jobId && !['deploying', 'destroying'].includes(r.stack?.status ?? ''));
  const finished = (id: string) => waitForJob(stack.models, id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);

  // One name, one FQDN, two tenants.
  const [a, b] = [await deploy('acme', 'web'), await deploy('beta', 'web')];
  t.equal(a.resource.stackFqdn, b.resource.stackFqdn);
  for (const { job } of [a, b]) t.equal((await finished(job.id)).status, 'succeeded');
  t.equal(await readFile(join(folderOf('acme', 'web'), 'who.txt'), 'utf8'), 'acme web');
  t.equal(await readFile(join(folderOf('beta', 'web'), 'who.txt'), 'utf8'), 'beta web');
  const stateOf = (tenant: string) => stackBackend(stack.config.PULUMI_BACKEND_URL, `${tenant}/${a.resource.stackFqdn}`).dir!;
  t.ok((await stat(join(stateOf('acme'), '.pulumi'))).isDirectory(), "acme's stack state is in its own folder");
  t.ok((await stat(join(stateOf('beta'), '.pulumi'))).isDirectory(), "beta's too");
  t.not(stateOf('acme'), stateOf('beta'));

  // The stack's life on the resource: deployed, by whom, with its outputs; then destroyed.
  await stackAfter(a.resource.id, a.job.id);
  const deployed = await call('GET', `/v1/resources/${a.resource.id}`);
  t.match(deployed.stack, {
    status: 'deployed',
    jobId: a.job.id,
    lastDeployedBy: 'ADMIN_TOKEN',
    resourceVersion: 1,
    templateVersion: '1.1.0',
    outputs: {},
  });
  t.ok(Object.keys(deployed.stack.outputs).length > 0, `its outputs: ${JSON.stringify(deployed.stack.outputs)}`);
  const destroy = await call('POST', `/v1/resources/${b.resource.id}/jobs`, { operation: 'destroy' });
  t.equal((await finished(destroy.id)).status, 'succeeded');
  await stackAfter(b.resource.id, destroy.id);
  t.match((await call('GET', `/v1/resources/${b.resource.id}`)).stack, { status: 'destroyed', jobId: destroy.id });
  t.equal((await call('GET', `/v1/resources/${a.resource.id}`)).stack.status, 'deployed', "acme's stack of the same FQDN is untouched");

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
  const first = acmeJobs[0]!;
  await waitForJob(stack.models, first.job.id, (j) => j.status !== 'queued', 60_000);
  const whileRunning = await waitForResource(first.resource.id, (r) => r.stack?.status !== 'pending');
  t.equal(whileRunning.stack?.status, 'deploying', 'an up in progress shows its stack deploying');
  const acmeSpans = await spans(acmeJobs);
  const betaSpans = await spans(betaJobs);
  t.notOk(overlaps(acmeSpans), `acme's three jobs ran one at a time: ${JSON.stringify(acmeSpans)}`);
  t.ok(overlaps(betaSpans), `beta's two jobs ran at once: ${JSON.stringify(betaSpans)}`);
});
