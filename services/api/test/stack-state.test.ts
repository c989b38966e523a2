import { randomUUID } from 'node:crypto';
import { Keyring, recordStackState, resealSecretOutputs, type SealedSecret, secretOutputsContext, STATE_VERSIONS_KEPT } from '@pds/shared';
import t from 'tap';
import { CREDENTIALS_KEY, startApi } from './harness.js';
import { caller, roleCallers, tenantManifest, tenantsWithTokens } from './tenant-helpers.js';

const SECRET = { '4dabf18193072939515e22adb298388d': '1b47061264138c4ac30d75fd1eb44270', ciphertext: 'v1:abc:def' };

/** A deployment of `count` resources (the shape Pulumi's state has), one value secret each. */
function deployment(count: number, content = 'x') {
  const stack = 'urn:pulumi:big::local-file-set::pulumi:pulumi:Stack::p-s';
  return {
    manifest: { time: '2026-12-02T00:00:00Z' },
    resources: [
      { urn: stack, type: 'pulumi:pulumi:Stack', custom: false, outputs: { url: 'https://x', token: SECRET } },
      ...Array.from({ length: count }, (_, i) => ({
        urn: `urn:pulumi:big::local-file-set::pkg:index:File::f${i}`,
        type: 'pkg:index:File',
        custom: true,
        id: `f${i}`,
        parent: stack,
        provider: 'urn:pulumi:big::local-file-set::pulumi:providers:pkg::default::id',
        dependencies: i > 0 ? [`urn:pulumi:big::local-file-set::pkg:index:File::f${i - 1}`] : [],
        protect: i === 0,
        inputs: { path: `f${i}.txt`, content, password: SECRET },
        outputs: { path: `f${i}.txt`, content, password: SECRET, size: content.length },
      })),
    ],
    pending_operations: [
      { type: 'creating', resource: { urn: 'urn:pulumi:big::local-file-set::pkg:index:File::late', type: 'pkg:index:File' } },
    ],
  };
}

t.test('stack state: current resources, outputs, versions and diffs, read from the store', async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = roleCallers(app, tokens.acme!);
  const beta = roleCallers(app, tokens.beta!);
  const resource = (await acme.deployer('POST', '/v1/resources', tenantManifest('acme', 'big'))).json();
  const write = (content: string, count = 1000) =>
    recordStackState(
      models,
      {
        _id: randomUUID(),
        tenantId: 'acme',
        resourceId: resource.id,
        stackFqdn: resource.stackFqdn,
        operation: 'up',
        createdBy: { id: 'x', name: 'ci' },
      },
      JSON.stringify(deployment(count, content)),
      { same: count },
    );

  t.equal((await write('x'))?.seq, 1);
  t.equal(await write('x'), undefined, 'the same state again is no new version');
  t.equal((await write('y'))?.seq, 2);

  // How long a read of a 1,000-resource state takes: the first parses it, the next are cached.
  let started = process.hrtime.bigint();
  const first = await acme.viewer('GET', `/v1/resources/${resource.id}/stack`);
  const firstMs = Number(process.hrtime.bigint() - started) / 1e6;
  started = process.hrtime.bigint();
  const again = await acme.viewer('GET', `/v1/resources/${resource.id}/stack`);
  const againMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.comment(
    `GET /stack of a 1,000-resource state (${first.body.length} bytes): ${firstMs.toFixed(0)} ms first, ${againMs.toFixed(0)} ms cached`,
  );
  t.equal(first.statusCode, 200);
  t.same(first.json(), again.json());
  const body = first.json();
  t.match(body, {
    version: 2,
    operation: 'up',
    createdBy: 'ci',
    resourceCount: 1001,
    pendingOperations: [{ type: 'creating', urn: /::late$/ }],
  });
  t.equal(body.resources.length, 1001);
  t.match(body.resources[1], {
    name: 'f0',
    type: 'pkg:index:File',
    id: 'f0',
    protect: true,
    parent: /pulumi:Stack/,
    inputs: { content: 'y', password: '[secret]' },
    outputs: { size: 1, password: '[secret]' },
  });
  t.notMatch(first.body, /ciphertext|v1:abc:def/, 'no secret ciphertext is shown');
  t.same((await acme.viewer('GET', `/v1/resources/${resource.id}/outputs`)).json(), {
    version: 2,
    outputs: { url: 'https://x', token: '[secret]' },
  });

  const diff = (await acme.viewer('GET', `/v1/resources/${resource.id}/stack/diff`)).json();
  t.match(diff, { from: 1, to: 2, added: [], removed: [] });
  t.equal(diff.changed.length, 1000);
  t.same(diff.changed[0].fields, ['inputs.content', 'outputs.content']);
  t.equal((await acme.viewer('GET', `/v1/resources/${resource.id}/stack/versions/1`)).json().resources[1].inputs.content, 'x');
  t.same(
    (await acme.viewer('GET', `/v1/resources/${resource.id}/stack/versions`)).json().items.map((v: { version: number }) => v.version),
    [2, 1],
  );

  // A repair chooses for each pending create the state shows; mending is for the tenant's admins.
  const repair = (body: object, call = acme.admin) => call('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'repair', ...body });
  const late = 'urn:pulumi:big::local-file-set::pkg:index:File::late';
  t.match(
    (await repair({})).json().message,
    /choose import \(with its id\) or clear for each pending create: urn:pulumi:big::local-file-set::pkg:index:File::late/,
  );
  t.match((await repair({ pendingCreates: [{ urn: late, action: 'import' }] })).json().message, /pendingCreates\[0\]\.id/);
  t.equal(
    (
      await repair({
        pendingCreates: [
          { urn: late, action: 'import', id: 'x' },
          { urn: 'other', action: 'clear' },
        ],
      })
    ).statusCode,
    400,
    'one action per repair',
  );
  t.equal((await repair({ pendingCreates: [{ urn: late, action: 'clear' }] }, acme.deployer)).statusCode, 403);
  t.equal((await repair({ pendingCreates: [{ urn: late, action: 'clear' }] }, beta.admin)).statusCode, 404);
  const queued = await repair({ pendingCreates: [{ urn: late, action: 'clear' }] });
  t.equal(queued.statusCode, 202, queued.body);
  await platform('POST', `/v1/jobs/${queued.json().id}/cancel`, {});
  const rename = await acme.admin('POST', `/v1/resources/${resource.id}/jobs`, {
    operation: 'state-rename',
    urn: 'urn:pulumi:big::local-file-set::pkg:index:File::f1',
  });
  t.match(rename.json().message, /name: state-rename needs the new name/);
  const foreign = await acme.admin('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'state-delete', urn: '--force' });
  t.match(foreign.json().message, /urn: --force is not a resource of this stack/, 'nothing reaches the CLI as an option');
  t.equal(
    (
      await acme.admin('POST', `/v1/resources/${resource.id}/jobs`, {
        operation: 'state-rename',
        urn: 'urn:pulumi:big::local-file-set::pkg:index:File::f1',
        name: '-x',
      })
    ).statusCode,
    400,
  );
  const viaJobs = await acme.admin('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'stack-remove' });
  t.match(viaJobs.json().message, /stack-remove is DELETE/);
  const stackItself = await acme.admin('POST', `/v1/resources/${resource.id}/jobs`, {
    operation: 'state-delete',
    urn: 'urn:pulumi:big::local-file-set::pulumi:pulumi:Stack::p-s',
  });
  t.match(stackItself.json().message, /is the stack itself/);

  // Export is for admins (the state holds encrypted secrets and their salt); restore takes a kept version.
  t.equal((await acme.deployer('GET', `/v1/resources/${resource.id}/stack/export`)).statusCode, 403);
  const exported = await acme.admin('GET', `/v1/resources/${resource.id}/stack/export?version=1`);
  t.match(exported.headers['content-disposition'], /attachment; filename=".*-v1\.json"/);
  t.equal(exported.json().deployment.resources[1].inputs.content, 'x');
  const restore = (version?: number) => acme.admin('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'restore', version });
  t.match((await restore()).json().message, /version: restore needs/);
  t.match((await restore(99)).json().message, /has no state version 99/);
  t.equal((await restore(2)).statusCode, 409, 'the current one');
  const restoring = await restore(1);
  t.equal(restoring.statusCode, 202, restoring.body);
  await platform('POST', `/v1/jobs/${restoring.json().id}/cancel`, {});

  // Another tenant: unknown, everywhere.
  for (const path of ['stack', 'outputs', 'stack/versions', 'stack/versions/1', 'stack/diff', 'stack/export']) {
    t.equal((await beta.admin('GET', `/v1/resources/${resource.id}/${path}`)).statusCode, 404, `${path}: 404 for beta`);
  }
  t.equal((await acme.viewer('GET', `/v1/resources/${resource.id}/stack/versions/7`)).statusCode, 404);

  // The last STATE_VERSIONS_KEPT are kept.
  for (let i = 0; i < STATE_VERSIONS_KEPT + 2; i++) await write(`v${i}`, 1);
  const kept = (await acme.viewer('GET', `/v1/resources/${resource.id}/stack/versions`)).json().items;
  t.equal(kept.length, STATE_VERSIONS_KEPT);
  t.equal(kept[0].version, STATE_VERSIONS_KEPT + 4);

  // Removing the stack but keeping what it made is an admin's job, queued like any other.
  t.equal((await acme.deployer('DELETE', `/v1/resources/${resource.id}?keepResources=true`)).statusCode, 403);
  t.equal((await acme.admin('DELETE', `/v1/resources/${resource.id}?keepResources=true&force=true`)).statusCode, 400);
  const removing = await acme.admin('DELETE', `/v1/resources/${resource.id}?keepResources=true`);
  t.equal(removing.statusCode, 202, removing.body);
  t.match(removing.json(), { operation: 'stack-remove', status: 'queued' });
  await platform('POST', `/v1/jobs/${removing.json().id}/cancel`, {});

  // Deleting the resource removes its versions.
  await platform('DELETE', `/v1/resources/${resource.id}`);
  t.equal(await models.StackState.countDocuments({ resourceId: resource.id }), 0);
});

t.test('secret outputs: sealed per state version, shown to admins only, re-sealed on a key rotation', async (t) => {
  const { app, models } = await startApi(t);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = roleCallers(app, tokens.acme!);
  const created = (await acme.admin('POST', '/v1/resources', tenantManifest('acme', 'sealed'))).json();
  const resourceId = created.id as string;
  const job = { _id: randomUUID(), tenantId: 'acme', resourceId, stackFqdn: created.stackFqdn as string, operation: 'up' as const };
  const keyring = new Keyring(CREDENTIALS_KEY);
  const context = secretOutputsContext({ resourceId, jobId: job._id });
  await recordStackState(models, job, JSON.stringify(deployment(1)), { create: 2 }, (c) =>
    keyring.seal(JSON.stringify({ token: 'tok-123456789' }), c),
  );
  const url = `/v1/resources/${resourceId}/outputs?showSecrets=true`;
  t.equal((await acme.deployer('GET', url)).statusCode, 403);
  t.equal((await roleCallers(app, tokens.beta!).admin('GET', url)).statusCode, 404, "another tenant's admin sees nothing");
  t.match((await acme.admin('GET', url)).json(), { outputs: { url: 'https://x', token: 'tok-123456789' } });
  // Copied onto another version, a sealed value does not open (bound to its version's job).
  await recordStackState(models, { ...job, _id: randomUUID() }, JSON.stringify(deployment(2)), { create: 1 }, () =>
    keyring.seal('{}', 'elsewhere'),
  );
  const misbound = await acme.admin('GET', url);
  t.equal(misbound.statusCode, 409, 'a value sealed for another context does not open');
  t.match(misbound.json().message, /do not open with the API's keys/);

  const rotated = new Keyring(Buffer.alloc(32, 12).toString('base64'), [CREDENTIALS_KEY]);
  await models.StackState.deleteOne({ resourceId, seq: 2 });
  // The same state again (a secret's value is not in its hash): no new version, but the new value is kept.
  t.notOk(
    await recordStackState(models, { ...job, _id: randomUUID() }, JSON.stringify(deployment(1)), { same: 2 }, (c) =>
      keyring.seal(JSON.stringify({ token: 'tok-987654321' }), c),
    ),
  );
  t.match((await acme.admin('GET', url)).json(), { version: 1, outputs: { token: 'tok-987654321' } });
  t.equal(await resealSecretOutputs(models, rotated), 1);
  const kept = await models.StackState.findOne({ resourceId, seq: 1 }).lean();
  t.equal(
    new Keyring(Buffer.alloc(32, 12).toString('base64')).open(kept!.secretOutputs as SealedSecret, context),
    '{"token":"tok-987654321"}',
  );
});
