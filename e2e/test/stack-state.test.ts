import { randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { toolPath } from '@pds/devkit';
import { stackBackend } from '@pds/runner';
import { jobStackKey, type StackJobDoc } from '@pds/shared';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createResource, fileSetManifest, queueJob, replaceResource, startStack, waitForJob } from './harness.js';

/**
 * With the real CLI: each up, refresh and destroy that changes a stack's state leaves a version of
 * it; the API shows the resources in the current one (secrets masked), its outputs, every version
 * with its job, and what changed between two, without running Pulumi.
 */
t.test("a stack's state is readable through the API, version by version", async (t) => {
  const stack = await startStack(t);
  const directory = join(tmpdir(), `pds-state-${randomUUID().slice(0, 8)}`);
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const get = async (url: string) => {
    const res = await stack.api.inject({ method: 'GET', url, headers: stack.auth });
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const run = async (id: string, operation: string, options: object = {}) => {
    const job = await queueJob(stack, id, { operation, ...options });
    const done = await waitForJob(stack.models, job.id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
    t.equal(done.status, 'succeeded', `${operation}: ${done.error ?? ''}`);
    return get(`/v1/jobs/${job.id}`);
  };

  const secret = `state-secret-${randomUUID()}`;
  const manifest = (files: { path: string; content: string }[], extra = '') =>
    fileSetManifest('state', directory, files).replace('spec:\n', `spec:\n${extra}`);
  const resource = await createResource(stack, manifest([{ path: 'a.txt', content: 'one' }], `  secret: ${secret}\n`));
  t.same(
    await get(`/v1/resources/${resource.id}/stack`),
    { version: null, resources: [], pendingOperations: [] },
    'nothing before the first job',
  );

  const first = await run(resource.id, 'up');
  t.equal(first.stateVersion, 1, 'the up wrote version 1');
  // Version 1 is, to the byte, the deployment `pulumi stack export` gives of the state the up left
  // (the runner reads it from the checkpoint, without a second CLI process).
  const firstJob = (await stack.models.StackJob.findById(first.id).lean<StackJobDoc>())!;
  const backend = stackBackend(stack.config.PULUMI_BACKEND_URL, jobStackKey(firstJob));
  const cli = await execa(toolPath('pulumi'), ['stack', 'export', '--stack', firstJob.stackFqdn], {
    env: { ...process.env, PULUMI_BACKEND_URL: backend.url, PULUMI_HOME: join(stack.scratch, 'export-home'), PULUMI_CONFIG_PASSPHRASE: '' },
    cwd: stack.scratch,
  });
  t.equal(
    JSON.stringify((await get(`/v1/resources/${resource.id}/stack/export?version=1`)).deployment),
    JSON.stringify((JSON.parse(cli.stdout) as { deployment: unknown }).deployment),
    'version 1 is what `pulumi stack export` prints',
  );
  const current = await get(`/v1/resources/${resource.id}/stack`);
  t.match(current, { version: 1, jobId: first.id, operation: 'up', createdBy: 'ADMIN_TOKEN', pendingOperations: [] });
  const types = current.resources.map((r: { type: string }) => r.type).sort();
  t.ok(types.includes('pulumi:pulumi:Stack'), 'the stack resource');
  const files = current.resources.filter((r: { type: string }) => r.type === 'pulumi-nodejs:dynamic:Resource');
  t.ok(files.length >= 2, 'the file resources (a.txt and the secret file)');
  const a = files.find((r: { name: string }) => r.name === 'a.txt');
  t.match(a, { urn: /::a\.txt$/, custom: true, protect: false, inputs: { content: 'one' } });
  t.notMatch(JSON.stringify(current), secret, 'the secret parameter appears nowhere in clear');
  t.match(JSON.stringify(current), /\[secret\]/, 'it shows as [secret]');
  const outputs = await get(`/v1/resources/${resource.id}/outputs`);
  t.equal(outputs.version, 1);
  t.ok(Object.keys(outputs.outputs).length > 0, 'the stack outputs');

  // A refresh that finds nothing changed writes no version.
  const refreshed = await run(resource.id, 'refresh');
  t.equal(refreshed.stateVersion, undefined, 'an unchanged state is not a new version');
  const upOutputs = first.result.outputs as Record<string, unknown>;
  t.ok(Object.keys(upOutputs).length > 0 && JSON.stringify(upOutputs).includes('[secret]'), 'the up has outputs, a secret one');
  t.same(refreshed.result.outputs, upOutputs, "the refresh's outputs (read from the state it left) are the up's, secrets masked alike");

  // A changed file and a new one: version 2, and the diff says which.
  await replaceResource(
    stack,
    resource.id,
    manifest(
      [
        { path: 'a.txt', content: 'two' },
        { path: 'b.txt', content: 'new' },
      ],
      `  secret: "[secret]"\n`,
    ),
  );
  const second = await run(resource.id, 'up');
  t.equal(second.stateVersion, 2);
  const diff = await get(`/v1/resources/${resource.id}/stack/diff`);
  t.match(diff, { from: 1, to: 2 });
  t.equal(diff.added.length, 1, 'b.txt added');
  t.match(diff.added[0], /b\.txt/);
  t.ok(
    diff.changed.some((c: { urn: string; fields: string[] }) => c.urn === a.urn && c.fields.includes('inputs.content')),
    'a.txt changed, its content',
  );
  t.same(diff.removed, []);

  const destroyed = await run(resource.id, 'destroy');
  const versions = (await get(`/v1/resources/${resource.id}/stack/versions`)).items;
  t.same(
    versions.map((v: { version: number; operation: string; jobId: string }) => [v.version, v.operation, v.jobId]),
    [
      [3, 'destroy', destroyed.id],
      [2, 'up', second.id],
      [1, 'up', first.id],
    ],
  );
  t.equal((await get(`/v1/resources/${resource.id}/stack`)).resources.length, 0, 'nothing left after the destroy');
  const old = await get(`/v1/resources/${resource.id}/stack/versions/2`);
  t.ok(
    old.resources.some((r: { name: string }) => r.name === 'b.txt'),
    'an earlier version is still readable',
  );
  const all = await get(`/v1/resources/${resource.id}/stack/diff?from=0&to=3`);
  t.same(all, { from: 0, to: 3, added: [], removed: [], changed: [] }, 'from nothing to nothing');
  t.equal(
    (await stack.api.inject({ method: 'GET', url: `/v1/resources/${resource.id}/stack/versions/9`, headers: stack.auth })).statusCode,
    404,
  );

  // Export: a version as `pulumi stack export` gives it, secrets still encrypted.
  const exported = await get(`/v1/resources/${resource.id}/stack/export?version=1`);
  t.equal(exported.version, 3);
  t.ok(
    exported.deployment.resources.some(
      (r: { urn: string; inputs?: { content?: string } }) => r.urn === a.urn && r.inputs?.content === 'one',
    ),
  );
  t.notMatch(JSON.stringify(exported), secret, 'the secret parameter stays encrypted');
  t.match(JSON.stringify(exported), /ciphertext/);

  // Restore version 2 over the destroyed stack; a refresh finds the files gone, the up writes them again.
  const restored = await run(resource.id, 'restore', { version: 2 });
  t.equal(restored.stateVersion, 4, 'the restore is a version of its own');
  t.same(
    await get(`/v1/resources/${resource.id}/stack/diff?from=2&to=4`),
    { from: 2, to: 4, added: [], removed: [], changed: [] },
    'the state of version 2 again',
  );
  await run(resource.id, 'refresh');
  await run(resource.id, 'up');
  t.equal(await readFile(join(directory, 'a.txt'), 'utf8'), 'two', 'the files of that version are back');
  t.equal(await readFile(join(directory, 'b.txt'), 'utf8'), 'new');

  // Import what was exported (version 1): the stack holds version 1's resources again.
  const foreign = { ...exported, deployment: { ...exported.deployment, resources: [{ urn: 'urn:pulumi:other::p::t::x', type: 't' }] } };
  const refused = await stack.api.inject({
    method: 'POST',
    url: `/v1/resources/${resource.id}/stack/import`,
    headers: stack.auth,
    payload: foreign,
  });
  t.equal(refused.statusCode, 400);
  t.match(refused.json().message, /deployment\.resources\[0\]\.urn: .* is not a resource of stack state of project local-file-set/);
  const imported = await stack.api.inject({
    method: 'POST',
    url: `/v1/resources/${resource.id}/stack/import`,
    headers: stack.auth,
    payload: exported,
  });
  t.equal(imported.statusCode, 202, imported.body);
  const importDone = await waitForJob(stack.models, imported.json().id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
  t.equal(importDone.status, 'succeeded', importDone.error ?? '');
  const afterImport = await get(`/v1/resources/${resource.id}/stack`);
  t.equal(afterImport.version, importDone.stateVersion);
  t.same(
    await get(`/v1/resources/${resource.id}/stack/diff?from=1&to=${afterImport.version}`),
    { from: 1, to: afterImport.version, added: [], removed: [], changed: [] },
    "version 1's state again",
  );
  t.equal(await stack.models.StateUpload.countDocuments({ resourceId: resource.id }), 0, 'the upload is read once and removed');
});

/**
 * With the real CLI: a stack's state mended through the API, as jobs (admin only): a resource
 * forgotten (`state-delete`: the file stays, the next up creates it again in the state), renamed,
 * and a repair (a refresh that deals with pending creates).
 */
t.test("a stack's state is mended as jobs", async (t) => {
  const stack = await startStack(t);
  const directory = join(tmpdir(), `pds-mend-${randomUUID().slice(0, 8)}`);
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const call = (method: 'GET' | 'POST', url: string, payload?: object, headers = stack.auth) =>
    stack.api.inject({ method, url, headers, ...(payload ? { payload } : {}) });
  const run = async (id: string, body: object) => {
    const res = await call('POST', `/v1/resources/${id}/jobs`, body);
    if (res.statusCode !== 202) throw new Error(`${JSON.stringify(body)}: ${res.statusCode} ${res.body}`);
    return waitForJob(stack.models, res.json().id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
  };
  const resource = await createResource(
    stack,
    fileSetManifest('mend', directory, [
      { path: 'a.txt', content: 'a' },
      { path: 'b.txt', content: 'b' },
    ]),
  );
  t.equal((await run(resource.id, { operation: 'up' })).status, 'succeeded');
  const urns = async () =>
    ((await call('GET', `/v1/resources/${resource.id}/stack`)).json().resources as { urn: string }[]).map((r) => r.urn);
  const aUrn = (await urns()).find((u) => u.endsWith('::a.txt'))!;
  const bUrn = (await urns()).find((u) => u.endsWith('::b.txt'))!;

  // Refused where it makes no sense, or for roles below admin.
  const deployer = (await call('POST', '/v1/tokens', { name: 'mend-deployer', role: 'deployer' })).json().token as string;
  const asDeployer = await call(
    'POST',
    `/v1/resources/${resource.id}/jobs`,
    { operation: 'state-delete', urn: aUrn },
    { authorization: `Bearer ${deployer}` },
  );
  t.equal(asDeployer.statusCode, 403, 'a deployer does not mend state');
  const unknown = await call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'state-delete', urn: `${aUrn}x` });
  t.equal(unknown.statusCode, 400);
  t.match(unknown.json().message, /is not in the stack's state/);
  t.equal((await call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'state-delete' })).statusCode, 400, 'the urn is needed');
  t.equal(
    (await call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'state-unprotect', urn: aUrn })).statusCode,
    409,
    'not protected',
  );

  // Forget a.txt: the file stays; the next up creates it again in the state.
  const forgot = await run(resource.id, { operation: 'state-delete', urn: aUrn });
  t.equal(forgot.status, 'succeeded', forgot.error ?? '');
  t.notOk((await urns()).includes(aUrn), 'gone from the state');
  t.equal(await readFile(join(directory, 'a.txt'), 'utf8'), 'a', 'the file (the cloud) kept it');
  const again = await run(resource.id, { operation: 'up' });
  t.equal(again.status, 'succeeded');
  t.match(again.summary, { create: 1 }, 'the up created it again');
  t.ok((await urns()).includes(aUrn));

  // Rename b.txt in the state.
  const renamed = await run(resource.id, { operation: 'state-rename', urn: bUrn, name: 'b-renamed' });
  t.equal(renamed.status, 'succeeded', renamed.error ?? '');
  t.ok(
    (await urns()).some((u) => u.endsWith('::b-renamed')),
    'the state holds the new name',
  );

  // A repair with nothing pending is a refresh.
  const repaired = await run(resource.id, { operation: 'repair' });
  t.equal(repaired.status, 'succeeded', repaired.error ?? '');
  const versions = (await call('GET', `/v1/resources/${resource.id}/stack/versions`))
    .json()
    .items.map((v: { operation: string }) => v.operation);
  t.same(
    versions.slice(0, 4),
    ['repair', 'state-rename', 'up', 'state-delete'],
    'each state operation and change is a state version, with its operation',
  );

  // Remove the stack without destroying what it made: the files stay, the stack and the resource go.
  const stateDir = stackBackend(stack.config.PULUMI_BACKEND_URL, resource.stackFqdn).dir!;
  const stackFiles = () => readdir(join(stateDir, '.pulumi', 'stacks', 'local-file-set')).catch(() => [] as string[]);
  t.ok((await stackFiles()).includes('mend.json'), 'the stack is in the backend');
  const removal = await stack.api.inject({ method: 'DELETE', url: `/v1/resources/${resource.id}?keepResources=true`, headers: stack.auth });
  t.equal(removal.statusCode, 202, removal.body);
  t.equal(removal.json().operation, 'stack-remove');
  const removed = await waitForJob(stack.models, removal.json().id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
  t.equal(removed.status, 'succeeded', removed.error ?? '');
  // Removed once the job's end is written (only a run whose result stands removes it).
  const gone = async () =>
    (await stack.models.Resource.countDocuments({ _id: resource.id })) +
    (await stack.models.StackState.countDocuments({ resourceId: resource.id }));
  for (let tries = 0; (await gone()) > 0 && tries < 200; tries++) await new Promise((r) => setTimeout(r, 50));
  t.equal((await call('GET', `/v1/resources/${resource.id}`)).statusCode, 404, 'the resource is gone');
  t.equal(await stack.models.StackState.countDocuments({ resourceId: resource.id }), 0, 'with its state versions');
  t.equal(await readFile(join(directory, 'a.txt'), 'utf8'), 'a', 'what the stack created stays');
  t.notOk((await stackFiles()).includes('mend.json'), 'the stack is gone from the backend');
});
