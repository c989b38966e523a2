import { lineStore, RunnerPool, storeApiToken, tenantRunningKey } from '@pds/shared';
import t from 'tap';
import { auth, manifest, startApi } from './harness.js';

/** Creates a LocalFileSet resource through the API; returns it as the API shows it. */
async function createResource(app: Awaited<ReturnType<typeof startApi>>['app'], name: string) {
  const created = await app.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...auth, 'content-type': 'application/yaml' },
    payload: manifest(name),
  });
  return created.json() as { id: string };
}

t.test('jobs', async (t) => {
  const { app, models, waiting, redisServer } = await startApi(t);
  const resource = (
    await app.inject({
      method: 'POST',
      url: '/v1/resources',
      headers: { ...auth, 'content-type': 'application/yaml' },
      payload: manifest('web'),
    })
  ).json();
  const createJob = (payload: object, id = resource.id) =>
    app.inject({ method: 'POST', url: `/v1/resources/${id}/jobs`, headers: auth, payload });

  t.test('creating a job answers 202 with the queued job, and the job waits for the dispatcher under the same id', async (t) => {
    const res = await createJob({ operation: 'preview', message: 'check', expectNoChanges: true });
    t.equal(res.statusCode, 202);
    const job = res.json();
    t.match(job, {
      status: 'queued',
      operation: 'preview',
      resourceId: resource.id,
      resourceVersion: 1,
      stackFqdn: resource.stackFqdn,
      tenant: 'default',
    });
    t.same(job.options, { message: 'check', expectNoChanges: true });
    const queued = await waiting.entry(job.id);
    t.match(
      queued,
      { jobId: job.id, jobClass: 'people', tenant: 'default' },
      "waiting for the dispatcher, in its tenant's line of people's jobs",
    );
    t.same(
      queued?.data,
      { stackFqdn: resource.stackFqdn, stackKey: resource.stackFqdn, tenantId: 'default', resourceId: resource.id },
      'in the default tenant, the stack key is the FQDN',
    );
  });

  t.test('an unknown operation is a 400 naming the field', async (t) => {
    const res = await createJob({ operation: 'deploy' });
    t.equal(res.statusCode, 400);
    t.match(res.json().message, /operation/);
    t.equal((await createJob({ operation: 'up', bogus: 1 })).statusCode, 400);
  });

  t.test('a job for an unknown resource is a 404', async (t) => {
    t.equal((await createJob({ operation: 'up' }, 'missing')).statusCode, 404);
  });

  t.test('jobs are listed newest first and filtered', async (t) => {
    const up = (await createJob({ operation: 'up' })).json();
    const list = (await app.inject({ method: 'GET', url: `/v1/jobs?resourceId=${resource.id}`, headers: auth })).json();
    t.equal(list.items[0].id, up.id);
    const previews = (await app.inject({ method: 'GET', url: '/v1/jobs?operation=preview&status=queued', headers: auth })).json();
    t.ok(previews.items.length >= 1);
    t.ok(previews.items.every((j: { operation: string }) => j.operation === 'preview'));
    t.equal((await app.inject({ method: 'GET', url: '/v1/jobs?status=exploded', headers: auth })).statusCode, 400);
    const read = await app.inject({ method: 'GET', url: `/v1/jobs/${up.id}`, headers: auth });
    t.equal(read.json().status, 'queued');
    t.notOk(read.json().result, 'no result before the job ends');
    t.equal((await app.inject({ method: 'GET', url: '/v1/jobs/missing', headers: auth })).statusCode, 404);
  });

  t.test('lines are paged by seq', async (t) => {
    const job = (await createJob({ operation: 'refresh' })).json();
    const ts = new Date().toISOString();
    const writer = lineStore(models).writer(job.id);
    await writer.append([1, 2].map((seq) => ({ seq, stream: 'stdout' as const, text: `line ${seq}`, ts })));
    await writer.append([{ seq: 3, stream: 'stdout', text: 'line 3', ts }]);
    const res = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/lines?from=1&limit=1`, headers: auth });
    t.same(
      res.json().items.map((l: { seq: number; text: string }) => [l.seq, l.text]),
      [[2, 'line 2']],
    );
  });

  t.test('the lines of a job swept as old history: 410 saying so; the job and its result stay', async (t) => {
    const job = (await createJob({ operation: 'refresh' })).json();
    const sweptAt = new Date('2026-11-01T00:00:00Z');
    await models.StackJob.updateOne(
      { _id: job.id },
      { $set: { status: 'succeeded', finishedAt: new Date('2026-10-01T00:00:00Z'), linesSweptAt: sweptAt, lastSeq: 5 } },
    );
    const res = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/lines`, headers: auth });
    t.equal(res.statusCode, 410);
    t.match(res.json(), {
      statusCode: 410,
      error: 'GONE',
      message: /removed as old history on 2026-11-01T00:00:00.000Z.*HISTORY_LINES_DAYS.*GET \/v1\/jobs\//,
    });
    const caughtUp = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}/lines?from=5`, headers: auth });
    t.same([caughtUp.statusCode, caughtUp.json()], [200, { items: [] }], 'a reader that has every line is told there are no more');
    const read = (await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: auth })).json();
    t.match(read, { status: 'succeeded', linesSweptAt: sweptAt.toISOString(), result: { status: 'succeeded' } });
  });

  t.test('/metrics counts requests and jobs created by operation', async (t) => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    t.match(text, /# TYPE api_jobs_created_total counter/);
    t.match(text, /api_jobs_created_total\{operation="up"\} [1-9]/);
    t.match(text, /api_requests_total\{code="202",method="POST",route="\/v1\/resources\/:id\/jobs"\} [1-9]/);
  });

  t.test('with Redis down, creating a job is a 503 and leaves no job behind; /ready says which dependency', async (t) => {
    await redisServer.stop();
    const before = await models.StackJob.countDocuments();
    const res = await createJob({ operation: 'up' });
    t.equal(res.statusCode, 503);
    t.match(res.json().message, /queue \(Redis\) is unavailable/);
    t.equal(await models.StackJob.countDocuments(), before, 'the job document was removed again');
    const ready = await app.inject({ method: 'GET', url: '/ready' });
    t.equal(ready.statusCode, 503);
    t.same(ready.json(), { status: 'unavailable', mongo: 'ok', redis: 'unavailable' });
    t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  });
});

t.test('job lists', async (t) => {
  const { app, models } = await startApi(t);
  const resource = (
    await app.inject({
      method: 'POST',
      url: '/v1/resources',
      headers: { ...auth, 'content-type': 'application/yaml' },
      payload: manifest('listed'),
    })
  ).json();
  const createJob = (payload: object) => app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload });

  t.test('the job list filters, pages with a cursor, and ignores query keys it does not know', async (t) => {
    for (let i = 0; i < 3; i++) t.equal((await createJob({ operation: 'refresh' })).statusCode, 202);
    const list = async (query: string) => app.inject({ method: 'GET', url: `/v1/jobs?${query}`, headers: auth });
    const page1 = (await list(`resourceId=${resource.id}&operation=refresh&limit=2`)).json();
    t.equal(page1.items.length, 2);
    const page2 = (await list(`resourceId=${resource.id}&operation=refresh&limit=2&cursor=${page1.nextCursor}`)).json();
    t.equal(page2.items.length, 1);
    const ids = [...page1.items, ...page2.items].map((j: { id: string }) => j.id);
    t.equal(new Set(ids).size, 3);
    t.ok([...page1.items, ...page2.items].every((j: { operation: string }) => j.operation === 'refresh'));
    // Found by the schema fuzz: stray keys once reached the database query (a null byte in one was a 500).
    const stray = await list('%00x=1&status%5B%24ne%5D=queued&options.message=x');
    t.equal(stray.statusCode, 200);
    t.ok(stray.json().items.length >= 3, 'unknown keys filter nothing');
    t.match((await list('status=sleeping')).json(), { statusCode: 400, message: /status/ });
  });

  t.test('Idempotency-Key: a retry gets the first job, another body with the key is a 409, racing retries create one job', async (t) => {
    const withKey = (key: string, payload: object) =>
      app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: { ...auth, 'idempotency-key': key }, payload });
    const first = await withKey('deploy-42', { operation: 'preview', message: 'x' });
    t.equal(first.statusCode, 202);
    const retry = await withKey('deploy-42', { operation: 'preview', message: 'x' });
    t.equal(retry.statusCode, 202);
    t.equal(retry.json().id, first.json().id);
    t.equal(retry.headers['idempotent-replayed'], 'true');
    const other = await withKey('deploy-42', { operation: 'up' });
    t.equal(other.statusCode, 409);
    t.match(other.json().message, /Idempotency-Key "deploy-42" was already used with a different request body/);

    const racing = await Promise.all(Array.from({ length: 8 }, () => withKey('deploy-43', { operation: 'refresh', message: 'race' })));
    const ids = new Set(racing.filter((r) => r.statusCode === 202).map((r) => r.json().id));
    t.equal(ids.size, 1, 'one job, whoever won');
    t.ok(racing.every((r) => r.statusCode === 202 || (r.statusCode === 409 && /still being processed/.test(r.json().message))));
    const created = await models.StackJob.countDocuments({ resourceId: resource.id, 'options.message': 'race' });
    t.equal(created, 1);
  });

  t.test('an ended job is read once from MongoDB, then from memory (ended jobs never change)', async (t) => {
    const job = (await createJob({ operation: 'preview', message: 'ends' })).json();
    const get = async () => (await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: auth })).json();
    t.equal((await get()).status, 'queued', 'not cached while it can still change');
    await models.StackJob.updateOne({ _id: job.id }, { $set: { status: 'succeeded', exitCode: 0, finishedAt: new Date() } });
    const ended = await get();
    t.match(ended, { status: 'succeeded', result: { exitCode: 0 } });
    // Were the document to change behind the API's back, the cached view would still be served.
    await models.StackJob.updateOne({ _id: job.id }, { $set: { exitCode: 99 } });
    t.same(await get(), ended);
  });
});

t.test(
  'drift schedules: a cron more often than allowed is refused naming it; a user job cancels the checks waiting on its stack',
  async (t) => {
    const { app } = await startApi(t);
    const resource = await createResource(app, 'drifty');
    const url = `/v1/resources/${resource.id}/drift-schedule`;
    for (const [cron, why] of [
      ['*/5 * * * *', /cron: runs every 300 s; drift checks run at most every 3600 s/],
      ['not a cron', /cron: /],
    ] as const) {
      const res = await app.inject({ method: 'PUT', url, headers: auth, payload: { cron } });
      t.equal(res.statusCode, 400, cron);
      t.match(res.json().message, why);
    }
    t.equal((await app.inject({ method: 'GET', url, headers: auth })).statusCode, 404, 'none set');
    const set = await app.inject({ method: 'PUT', url, headers: auth, payload: { cron: '0 3 * * *', ignore: [] } });
    t.equal(set.statusCode, 200, set.body);
    t.match(set.json(), { cron: '0 3 * * *', autoRemediate: false, paused: false, nextRunAt: /T03:00:00/ });

    const check = (
      await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload: { operation: 'drift-check' } })
    ).json();
    t.equal(check.status, 'queued');
    const user = await app.inject({
      method: 'POST',
      url: `/v1/resources/${resource.id}/jobs`,
      headers: auth,
      payload: { operation: 'preview' },
    });
    t.equal(user.statusCode, 202);
    const after = (await app.inject({ method: 'GET', url: `/v1/jobs/${check.id}`, headers: auth })).json();
    t.match(after, { status: 'cancelled', reason: 'superseded', result: { error: /gives way to job/ } }, 'the waiting check gave way');
    t.equal((await app.inject({ method: 'DELETE', url, headers: auth })).statusCode, 204);
  },
);

t.test(
  'a drift check a person asks for runs like any job: not at the lowest priority, and not cancelled where no schedule runs',
  async (t) => {
    const { app, waiting } = await startApi(t);
    const resource = await createResource(app, 'asked');
    const post = async (payload: object) =>
      (await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload })).json();
    const check = await post({ operation: 'drift-check' });
    t.match(await waiting.entry(check.id), { jobClass: 'people', opts: {} }, "waiting with people's jobs, not the scheduled checks");
    t.notOk((await waiting.entry(check.id))?.opts.priority, "without the scheduled checks' lowest priority");
    await post({ operation: 'preview' });
    const after = (await app.inject({ method: 'GET', url: `/v1/jobs/${check.id}`, headers: auth })).json();
    t.equal(after.status, 'queued', 'a later job on its stack leaves it in its place');
  },
);

t.test("a tenant's drift schedules have a number: DRIFT_MAX_SCHEDULES_PER_TENANT, or the policy's maxDriftSchedules", async (t) => {
  const { app } = await startApi(t, { config: { DRIFT_MAX_SCHEDULES_PER_TENANT: 2 } });
  const resources = [];
  for (const name of ['cap-a', 'cap-b', 'cap-c']) resources.push(await createResource(app, name));
  const schedule = (id: string, cron = '0 3 * * *') =>
    app.inject({ method: 'PUT', url: `/v1/resources/${id}/drift-schedule`, headers: auth, payload: { cron } });
  t.equal((await schedule(resources[0]!.id)).statusCode, 200);
  t.equal((await schedule(resources[1]!.id)).statusCode, 200);
  const third = await schedule(resources[2]!.id);
  t.equal(third.statusCode, 409, 'a third schedule is past the default');
  t.match(third.json(), { error: 'POLICY_VIOLATION', message: /at most 2 drift schedules and has 2 \(policy: maxDriftSchedules/ });
  t.equal((await schedule(resources[0]!.id, '0 4 * * *')).statusCode, 200, 'changing a schedule the tenant has is not a new one');
  const policy = await app.inject({ method: 'PUT', url: '/v1/tenants/default/policy', headers: auth, payload: { maxDriftSchedules: 3 } });
  t.equal(policy.statusCode, 200, policy.body);
  t.equal((await schedule(resources[2]!.id)).statusCode, 200, "the tenant's policy sets its own number");
  await app.inject({ method: 'DELETE', url: `/v1/resources/${resources[0]!.id}/drift-schedule`, headers: auth });
  const tightened = await app.inject({
    method: 'PUT',
    url: '/v1/tenants/default/policy',
    headers: auth,
    payload: { maxDriftSchedules: 1 },
  });
  t.equal(tightened.statusCode, 200);
  t.equal((await schedule(resources[0]!.id)).statusCode, 409, 'a deleted schedule frees no room under a tightened number');
});

t.test('a gated up: its preview goes first; cancelling the preview fails the gated job, which never runs', async (t) => {
  const { app } = await startApi(t);
  const resource = await createResource(app, 'gated-api');
  const refused = await app.inject({
    method: 'POST',
    url: `/v1/resources/${resource.id}/jobs`,
    headers: auth,
    payload: { operation: 'preview', requireApproval: true },
  });
  t.equal(refused.statusCode, 400);
  t.match(refused.json().message, /requireApproval: only up, destroy, restore jobs are gated \(not preview\)/);
  const gated = (
    await app.inject({
      method: 'POST',
      url: `/v1/resources/${resource.id}/jobs`,
      headers: auth,
      payload: { operation: 'up', requireApproval: true },
    })
  ).json();
  t.match(gated, { status: 'queued', approval: { required: 1, previewJobId: String } });
  const preview = (await app.inject({ method: 'GET', url: `/v1/jobs/${gated.approval.previewJobId}`, headers: auth })).json();
  t.match(preview, { operation: 'preview', status: 'queued', planFor: gated.id });
  const early = await app.inject({
    method: 'POST',
    url: `/v1/jobs/${gated.id}/approvals`,
    headers: auth,
    payload: { decision: 'approve' },
  });
  t.equal(early.statusCode, 409, 'no decision before its preview');
  t.match(early.json().message, /waits for its preview/);
  t.equal((await app.inject({ method: 'POST', url: `/v1/jobs/${preview.id}/cancel`, headers: auth })).statusCode, 200);
  const after = (await app.inject({ method: 'GET', url: `/v1/jobs/${gated.id}`, headers: auth })).json();
  t.match(after, {
    status: 'failed',
    reason: 'preview_failed',
    result: { error: /its preview, job .* was cancelled; nothing was applied/ },
  });
});

t.test('approvals count people, not tokens: a token a tenant admin issued acts for that admin', async (t) => {
  const { app, models } = await startApi(t);
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, token?: string, payload?: object) =>
    app.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : auth, ...(payload ? { payload } : {}) });
  const mint = async (name: string, by?: string) => (await call('POST', '/v1/tokens', by, { name, role: 'admin' })).json();
  const alice = await mint('alice');
  const bob = await mint('bob');
  const aliceCi = await mint('alice-ci', alice.token);
  t.equal(alice.actsFor, alice.id, 'a token a platform admin issued is an identity of its own');
  t.equal(aliceCi.actsFor, alice.id, 'a token alice issued acts for alice');
  const resource = await createResource(app, 'people');
  const gated = (await call('POST', `/v1/resources/${resource.id}/jobs`, aliceCi.token, { operation: 'up', requireApproval: true })).json();
  t.match(gated.createdBy, { id: aliceCi.id, name: 'alice-ci', actsFor: alice.id }, 'the job shows whom its token acts for');
  // Its preview's plan is in (as a runner would leave it).
  await models.StackJob.updateOne({ _id: gated.id }, { $set: { status: 'awaiting_approval' } });
  const self = await call('POST', `/v1/jobs/${gated.id}/approvals`, alice.token, { decision: 'approve' });
  t.equal(self.statusCode, 403, 'alice cannot approve what her other token asked for');
  t.match(self.json().message, /acts for the identity that created job .* \(token "alice-ci"\)/);
  const fourEyes = await call('POST', `/v1/jobs/${gated.id}/approvals`, bob.token, { decision: 'approve', comment: 'ok' });
  t.equal(fourEyes.statusCode, 200, fourEyes.body);
  t.match(fourEyes.json(), { status: 'approved', approval: { decisions: [{ by: { name: 'bob' }, decision: 'approve' }] } });

  // The other way round: alice asks, her CI token may not approve.
  const hers = (await call('POST', `/v1/resources/${resource.id}/jobs`, alice.token, { operation: 'up', requireApproval: true })).json();
  await models.StackJob.updateOne({ _id: hers.id }, { $set: { status: 'awaiting_approval' } });
  t.equal((await call('POST', `/v1/jobs/${hers.id}/approvals`, aliceCi.token, { decision: 'approve' })).statusCode, 403);
  // A token of an earlier version, issued by a tenant admin: it could be anyone's second token.
  const legacy = await storeApiToken(models, { name: 'old-laptop', role: 'admin', tenantId: 'default', createdBy: 'alice' });
  await models.ApiToken.updateOne({ id: legacy.doc.id }, { $unset: { actsFor: 1 } });
  const unknown = await call('POST', `/v1/jobs/${hers.id}/approvals`, legacy.token, { decision: 'approve' });
  t.equal(unknown.statusCode, 403);
  t.match(unknown.json().message, /was issued before tokens recorded whom they act for/);
  const remediating = await call('PUT', `/v1/resources/${resource.id}/drift-schedule`, legacy.token, {
    cron: '0 3 * * *',
    autoRemediate: true,
  });
  t.equal(remediating.statusCode, 403, 'nor may it set a schedule whose remediations act for it: whose they are is not known');
  t.match(remediating.json().message, /issue a new token to set one/);
  // And the other way round: such a token's gated job could never be approved (no approver can be
  // told apart from it): refused when asked for.
  const legacyDeployer = await storeApiToken(models, { name: 'old-ci', role: 'deployer', tenantId: 'default', createdBy: 'alice' });
  await models.ApiToken.updateOne({ id: legacyDeployer.doc.id }, { $unset: { actsFor: 1 } });
  const refusedUp = await call('POST', `/v1/resources/${resource.id}/jobs`, legacyDeployer.token, {
    operation: 'up',
    requireApproval: true,
  });
  t.equal(refusedUp.statusCode, 403);
  t.match(refusedUp.json().message, /token "old-ci" was issued before tokens recorded whom they act for: .*issue a new token/);
  // A job that reached the gate with such a creator all the same (a compensation of its failed up): no one may approve it.
  const orphan = (await call('POST', `/v1/resources/${resource.id}/jobs`, bob.token, { operation: 'up', requireApproval: true })).json();
  await models.StackJob.updateOne(
    { _id: orphan.id },
    { $set: { status: 'awaiting_approval', createdBy: { id: legacyDeployer.doc.id, name: 'old-ci', identityUnknown: true } } },
  );
  const byAlice = await call('POST', `/v1/jobs/${orphan.id}/approvals`, alice.token, { decision: 'approve' });
  t.equal(byAlice.statusCode, 403, 'alice may have issued it: she may not approve it');
  t.match(byAlice.json().message, /created by token "old-ci", issued before tokens recorded whom they act for/);
  t.match((await call('GET', `/v1/jobs/${orphan.id}`)).json().createdBy, { identityUnknown: true }, 'the job shows why');
  t.equal((await call('POST', `/v1/jobs/${orphan.id}/cancel`)).statusCode, 200, 'it can be cancelled');
  // Nor may it issue tokens: they would act for it and look like a known identity.
  const minted = await call('POST', '/v1/tokens', legacy.token, { name: 'laundered', role: 'admin' });
  t.equal(minted.statusCode, 403);
  t.match(minted.json().message, /may not issue tokens/);
  const checking = await call('PUT', `/v1/resources/${resource.id}/drift-schedule`, legacy.token, { cron: '0 3 * * *' });
  t.equal(checking.statusCode, 200, 'a schedule that only checks asks no approval: it may');

  // Two tokens of one identity are one approver: bob's second token replaces his first decision.
  const bobToo = await mint('bob-laptop', bob.token);
  const twoNeeded = (
    await call('POST', `/v1/resources/${resource.id}/jobs`, alice.token, { operation: 'up', requireApproval: true })
  ).json();
  await models.StackJob.updateOne({ _id: twoNeeded.id }, { $set: { status: 'awaiting_approval', 'approval.required': 2 } });
  await call('POST', `/v1/jobs/${twoNeeded.id}/approvals`, bob.token, { decision: 'approve' });
  const again = (await call('POST', `/v1/jobs/${twoNeeded.id}/approvals`, bobToo.token, { decision: 'approve' })).json();
  t.match(again, { status: 'awaiting_approval' }, 'still one approval of two');
  t.same(
    again.approval.decisions.map((d: { by: { name: string } }) => d.by.name),
    ['bob-laptop'],
  );

  // A gated destroy of a stack with no state: nothing to approve.
  const nothing = await call('POST', `/v1/resources/${resource.id}/jobs`, alice.token, { operation: 'destroy', requireApproval: true });
  t.equal(nothing.statusCode, 409);
  t.match(nothing.json().message, /has no state yet: there is nothing to destroy/);

  // Only named identities, when the policy names them.
  const policy = { approvals: { operations: ['destroy'], approvers: [bob.actsFor] } };
  t.equal((await call('PUT', '/v1/tenants/default/policy', undefined, policy)).statusCode, 200);
  const carol = await mint('carol');
  const named = (await call('POST', `/v1/resources/${resource.id}/jobs`, alice.token, { operation: 'up', requireApproval: true })).json();
  t.same(named.approval.approvers, [bob.id]);
  await models.StackJob.updateOne({ _id: named.id }, { $set: { status: 'awaiting_approval' } });
  const notNamed = await call('POST', `/v1/jobs/${named.id}/approvals`, carol.token, { decision: 'approve' });
  t.equal(notNamed.statusCode, 403);
  t.match(notNamed.json().message, /is not among the approvers of job .* \(policy: approvals\.approvers\)/);
  t.match(
    (await call('POST', `/v1/jobs/${named.id}/approvals`, bobToo.token, { decision: 'approve' })).json(),
    {
      status: 'approved',
    },
    "bob's second token acts for bob",
  );
});

t.test('compensation: only for an up; on a stack never deployed it is a destroy, so it needs the role of one', async (t) => {
  const { app } = await startApi(t);
  const resource = await createResource(app, 'compensated');
  const url = `/v1/resources/${resource.id}/jobs`;
  const preview = await app.inject({ method: 'POST', url, headers: auth, payload: { operation: 'preview', compensation: 'destroy' } });
  t.equal(preview.statusCode, 400);
  t.match(preview.json().message, /compensation: only a failed up is compensated/);
  const deployer = (
    await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth, payload: { name: 'dep', role: 'deployer' } })
  ).json().token;
  const asDeployer = await app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${deployer}` },
    payload: { operation: 'up', compensation: 'reapply_last_good' },
  });
  t.equal(asDeployer.statusCode, 403);
  t.match(asDeployer.json().message, /never deployed, so it is compensated by a destroy, which needs the admin role/);
  const plain = await app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${deployer}` },
    payload: { operation: 'up', compensation: 'none' },
  });
  t.equal(plain.statusCode, 202, 'none asks for nothing');
  const asAdmin = await app.inject({ method: 'POST', url, headers: auth, payload: { operation: 'up', compensation: 'destroy' } });
  t.match(asAdmin.json(), { status: 'queued', options: { compensation: 'destroy' } });
});

t.test('a waiting job says why it waits: its stack busy, the pool full, its tenant at its limit, or other tenants’ turn', async (t) => {
  const { app, redis } = await startApi(t);
  const resource = await createResource(app, 'why');
  const post = async () =>
    (
      await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload: { operation: 'preview' } })
    ).json();
  const reason = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: auth })).json().waitReason;
  const first = await post();
  const second = await post();
  t.equal(await reason(second.id), 'stack_busy', 'behind the first on its stack');
  t.equal(await reason(first.id), 'pool_full', 'no runner has a free slot (none is up)');
  await new RunnerPool(redis).register('runner-1', 2, 60_000);
  t.equal(await reason(first.id), 'tenant_turn', 'a slot is free: the dispatcher gives it in the tenants’ turn');
  const put = await app.inject({ method: 'PUT', url: '/v1/tenants/default/policy', headers: auth, payload: { maxConcurrentJobs: 1 } });
  t.equal(put.statusCode, 200, put.body);
  await redis.zadd(tenantRunningKey('default'), Date.now() + 60_000, 'another-job');
  t.equal(await reason(first.id), 'tenant_limit', 'its tenant runs as many jobs as it may');
});
