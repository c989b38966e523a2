import t from 'tap';
import { manifest, startApi } from './harness.js';
import { caller, roleCallers, tenantsWithTokens } from './tenant-helpers.js';

const withFiles = (name: string, files: number, directory = `/tmp/tenants/acme/${name}`) =>
  manifest(name)
    .replace(`/tmp/${name}`, directory)
    .replace('files: []', files > 0 ? `files:\n${'    - { path: f.txt, content: x }\n'.repeat(files)}` : 'files: []');

t.test('governance: a tenant deploys within the rules the platform sets', async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = roleCallers(app, tokens.acme!);
  const beta = caller(app, tokens.beta!.admin);

  const policy = {
    templatesByDefault: 'deny',
    templates: {
      LocalFileSet: {
        allowed: true,
        maxInstances: 5,
        parameters: { 'spec.files': { maxItems: 2 }, 'spec.directory': { pattern: '/[a-z0-9-]+$' } },
      },
    },
    operations: { preview: 'viewer', up: 'admin' },
    maxQueuedJobs: 3,
  };

  t.test('platform admins set a policy; the tenant reads its own; bad rules are named', async (t) => {
    const set = await platform('PUT', '/v1/tenants/acme/policy', policy);
    t.equal(set.statusCode, 200, set.body);
    t.same(set.json(), policy);
    t.same((await acme.viewer('GET', '/v1/tenants/acme/policy')).json(), policy, 'a tenant sees its rules');
    t.equal((await beta('GET', '/v1/tenants/acme/policy')).statusCode, 404, "not another tenant's");
    t.equal((await acme.admin('PUT', '/v1/tenants/acme/policy', {})).statusCode, 403, 'a tenant does not set its own rules');
    const badPattern = await platform('PUT', '/v1/tenants/beta/policy', {
      templates: { LocalFileSet: { parameters: { 'spec.name': { pattern: '(' } } } },
    });
    t.equal(badPattern.statusCode, 400);
    t.match(badPattern.json().message, /templates\.LocalFileSet\.parameters\.spec\.name\.pattern/);
    const badRange = await platform('PUT', '/v1/tenants/beta/policy', { templates: { LocalFileSet: { versions: 'one-ish' } } });
    t.equal(badRange.statusCode, 400);
    t.match(badRange.json().message, 'templates.LocalFileSet.versions: "one-ish" is not a semver range');
    const unknown = await platform('PUT', '/v1/tenants/beta/policy', { maxJobs: 3 });
    t.equal(unknown.statusCode, 400, 'an unknown rule is refused, not ignored');
    t.equal((await platform('PUT', '/v1/tenants/beta/policy', { templates: { LocalFileSet: { allowed: false } } })).statusCode, 200);
    const audit = (await acme.admin('GET', '/v1/audit?action=tenant.policy')).json().items;
    t.same(
      audit.map((e: { outcome: string; actor: { role: string } }) => `${e.actor.role} ${e.outcome}`).sort(),
      ['admin failure', 'platform success'],
      "the change, and acme's admin's refused try, are in acme's audit log",
    );
  });

  t.test('templates denied, parameters out of limits: refused naming the rule', async (t) => {
    const denied = await beta('POST', '/v1/resources', withFiles('b1', 0, '/tmp/beta-b1'));
    t.equal(denied.statusCode, 409);
    t.match(denied.json(), {
      error: 'POLICY_VIOLATION',
      message: /template LocalFileSet is not allowed for tenant beta \(policy: templates\.LocalFileSet\.allowed is false\)/,
    });
    const tooMany = await acme.deployer('POST', '/v1/resources', withFiles('big', 3));
    t.equal(tooMany.statusCode, 400);
    t.match(tooMany.json().message, "spec.files must have at most 2 items (tenant acme's limit)");
    const elsewhere = await acme.deployer('POST', '/v1/resources', withFiles('out', 1, '/tmp/tenants/acme/OUT'));
    t.match(elsewhere.json().message, "spec.directory must match /[a-z0-9-]+$ (tenant acme's limit)");
    t.equal(await models.Resource.countDocuments({ tenantId: { $in: ['acme', 'beta'] } }), 0, 'nothing was stored');
  });

  t.test('a version range: the built-in template (1.1.0) is refused outside it, and pinned on the resource inside it', async (t) => {
    await platform('PUT', '/v1/tenants/acme/policy', {
      ...policy,
      templates: { LocalFileSet: { ...policy.templates.LocalFileSet, versions: '^2' } },
    });
    const outside = await acme.deployer('POST', '/v1/resources', withFiles('v1', 1));
    t.equal(outside.statusCode, 409);
    t.match(
      outside.json().message,
      'template LocalFileSet 1.1.0 is outside the versions tenant acme may use, ^2 (policy: templates.LocalFileSet.versions)',
    );
    const allowedOnly = (await acme.viewer('GET', '/v1/templates')).json().items.find((x: { name: string }) => x.name === 'LocalFileSet');
    t.equal(allowedOnly.allowed, false, 'the catalogue says so');
    await platform('PUT', '/v1/tenants/acme/policy', {
      ...policy,
      templates: { LocalFileSet: { ...policy.templates.LocalFileSet, versions: '>=1 <2' } },
    });
    const inside = await acme.deployer('POST', '/v1/resources', withFiles('v1', 1));
    t.equal(inside.statusCode, 201, inside.body);
    t.equal(inside.json().templateVersion, '1.1.0', 'the resource records the template version it was checked against');
    t.equal((await acme.deployer('DELETE', `/v1/resources/${inside.json().id}`)).statusCode, 200);
    await platform('PUT', '/v1/tenants/acme/policy', policy);
  });

  t.test('maxInstances holds under concurrency: 20 parallel creates against a cap of 5 make exactly 5', async (t) => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => acme.deployer('POST', '/v1/resources', withFiles(`r${i}`, 1))));
    const codes = answers.map((a) => a.statusCode);
    t.equal(codes.filter((c) => c === 201).length, 5, `201 × 5 (${codes.join(' ')})`);
    t.equal(codes.filter((c) => c === 409).length, 15);
    // A create that meets another one's count under way is told to retry (the store lock); the rest name the cap.
    const refusals = answers.filter((a) => a.statusCode === 409).map((a) => a.json().message as string);
    const cap = /at most 5 LocalFileSet resources .*templates\.LocalFileSet\.maxInstances/;
    t.ok(
      refusals.some((message) => cap.test(message)),
      'a refusal names the cap',
    );
    t.same(
      refusals.filter((message) => !cap.test(message) && !/another change of the same kind is in progress .*; retry/.test(message)),
      [],
      'every refusal names the cap or says to retry',
    );
    t.equal(await models.Resource.countDocuments({ tenantId: 'acme' }), 5);
  });

  t.test('jobs: the least role per operation, the queue limit (429, Retry-After), limits narrowed after the fact', async (t) => {
    const [first, second] = (await acme.viewer('GET', '/v1/resources?limit=2')).json().items as { id: string }[];
    const byDeployer = await acme.deployer('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'up' });
    t.equal(byDeployer.statusCode, 403);
    t.match(byDeployer.json().message, /an? up job needs the admin role in tenant acme \(policy: operations\.up\)/);
    t.equal(
      (await acme.viewer('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'preview' })).statusCode,
      403,
      'the route still needs a deployer',
    );
    t.equal((await acme.admin('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'up' })).statusCode, 202);
    t.equal((await acme.deployer('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'preview' })).statusCode, 202);
    // A gated up counts once (its preview is part of it), and still counts while it awaits approval.
    const gated = await acme.admin('POST', `/v1/resources/${second!.id}/jobs`, { operation: 'up', requireApproval: true });
    t.equal(gated.statusCode, 202, gated.body);
    await models.StackJob.updateOne({ _id: gated.json().id }, { $set: { status: 'awaiting_approval' } });
    const full = await acme.deployer('POST', `/v1/resources/${second!.id}/jobs`, { operation: 'refresh' });
    t.equal(full.statusCode, 429);
    t.equal(full.headers['retry-after'], '30');
    t.match(
      full.json().message,
      /tenant acme has 3 waiting jobs \(queued, awaiting approval or approved\), its limit \(policy: maxQueuedJobs 3\)/,
    );
    t.equal(await models.StackJob.countDocuments({ tenantId: 'acme' }), 4, 'the refused job never reached the store or the queue');

    await platform('PUT', '/v1/tenants/acme/policy', {
      ...policy,
      maxQueuedJobs: 100,
      templates: { LocalFileSet: { allowed: true, parameters: { 'spec.files': { maxItems: 0 } } } },
    });
    const narrowed = await acme.admin('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'up' });
    t.equal(narrowed.statusCode, 409);
    t.match(narrowed.json().message, /outside its tenant's limits now: spec\.files must have at most 0 items/);
    t.equal(
      (await acme.admin('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'destroy' })).statusCode,
      202,
      'a destroy still cleans up',
    );
    t.equal(
      (await platform('POST', `/v1/resources/${first!.id}/jobs`, { operation: 'refresh' })).statusCode,
      202,
      'platform admins are not held to tenant roles',
    );
  });
});

t.test("a tenant's job limits: kept as set, a bad value named, shown back", async (t) => {
  const { app } = await startApi(t);
  const platform = caller(app);
  const set = await platform('PUT', '/v1/tenants/default/policy', { jobLimits: { memoryMb: 1024, cpus: 0.5, pids: 256, diskMb: 512 } });
  t.equal(set.statusCode, 200, set.body);
  t.same((await platform('GET', '/v1/tenants/default/policy')).json().jobLimits, { memoryMb: 1024, cpus: 0.5, pids: 256, diskMb: 512 });
  const tooSmall = await platform('PUT', '/v1/tenants/default/policy', { jobLimits: { memoryMb: 8 } });
  t.equal(tooSmall.statusCode, 400);
  t.match(tooSmall.json().message, /jobLimits\/memoryMb|jobLimits\.memoryMb/, 'the field is named');
  const unknown = await platform('PUT', '/v1/tenants/default/policy', { jobLimits: { swapMb: 1 } });
  t.equal(unknown.statusCode, 400, 'an unknown limit is refused, not ignored');
});
