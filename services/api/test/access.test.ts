import { hashToken } from '@pds/shared';
import t from 'tap';
import { auth, manifest, startApi } from './harness.js';

t.test('access: tokens, roles and the audit log', async (t) => {
  const { app, models } = await startApi(t);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const issue = async (name: string, role: string, headers = auth) =>
    app.inject({ method: 'POST', url: '/v1/tokens', headers, payload: { name, role } });
  const viewer = (await issue('dashboards', 'viewer')).json();
  const deployer = (await issue('ci', 'deployer')).json();
  const createResource = (name: string, headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/v1/resources',
      headers: { ...headers, 'content-type': 'application/yaml' },
      payload: manifest(name),
    });

  t.test('a new token is shown once; only its hash is stored and lists show its prefix', async (t) => {
    t.match(viewer, { name: 'dashboards', role: 'viewer', createdBy: 'ADMIN_TOKEN', token: /^pds_/ });
    t.equal(viewer.prefix, viewer.token.slice(0, 10));
    const stored = await models.ApiToken.findOne({ id: viewer.id }).lean();
    t.equal(stored?._id, hashToken(viewer.token));
    t.notMatch(JSON.stringify(stored), viewer.token);
    const list = await app.inject({ method: 'GET', url: '/v1/tokens', headers: auth });
    t.equal(list.statusCode, 200);
    t.notMatch(list.body, viewer.token);
    t.ok(list.json().items.some((i: { id: string; token?: string }) => i.id === viewer.id && i.token === undefined));
  });

  t.test('a viewer reads but cannot change anything: 403 naming the role needed and the role held', async (t) => {
    t.equal((await app.inject({ method: 'GET', url: '/v1/resources', headers: bearer(viewer.token) })).statusCode, 200);
    const res = await createResource('by-viewer', bearer(viewer.token));
    t.equal(res.statusCode, 403);
    t.match(res.json(), {
      statusCode: 403,
      error: 'FORBIDDEN',
      message: /POST \/v1\/resources needs the deployer role; token "dashboards" has the viewer role/,
    });
  });

  t.test('a deployer creates resources and up jobs, but a destroy, credentials and tokens need admin', async (t) => {
    const resource = (await createResource('by-deployer', bearer(deployer.token))).json();
    t.ok(resource.id);
    const jobs = `/v1/resources/${resource.id}/jobs`;
    t.equal(
      (await app.inject({ method: 'POST', url: jobs, headers: bearer(deployer.token), payload: { operation: 'up' } })).statusCode,
      202,
    );
    const destroy = await app.inject({ method: 'POST', url: jobs, headers: bearer(deployer.token), payload: { operation: 'destroy' } });
    t.equal(destroy.statusCode, 403);
    t.match(destroy.json().message, /a destroy job needs the admin role/);
    t.equal((await app.inject({ method: 'GET', url: '/v1/credentials', headers: bearer(deployer.token) })).statusCode, 403);
    t.equal((await issue('sneaky', 'admin', bearer(deployer.token))).statusCode, 403);
    const long = await app.inject({
      method: 'POST',
      url: jobs,
      headers: bearer(deployer.token),
      payload: { operation: 'up', timeoutSeconds: 7_200 },
    });
    t.equal(long.statusCode, 403, 'a deployer may not hold a runner slot past its cap');
    t.match(long.json().message, /timeoutSeconds over 3600 \(JOB_TIMEOUT_MAX_DEPLOYER_SECONDS\) needs the admin role/);
    t.equal(
      (
        await app.inject({
          method: 'POST',
          url: jobs,
          headers: bearer(deployer.token),
          payload: { operation: 'preview', timeoutSeconds: 3_600 },
        })
      ).statusCode,
      202,
      'up to the cap it may',
    );
    t.equal(
      (await app.inject({ method: 'POST', url: jobs, headers: auth, payload: { operation: 'preview', timeoutSeconds: 7_200 } })).statusCode,
      202,
      'an admin may go past it',
    );
    t.equal((await app.inject({ method: 'POST', url: jobs, headers: auth, payload: { operation: 'destroy' } })).statusCode, 202);
  });

  t.test('unknown, revoked and expired tokens are 401s that say which', async (t) => {
    const missing = await app.inject({ method: 'GET', url: '/v1/jobs' });
    t.equal(missing.statusCode, 401);
    t.match(missing.json().message, /missing Authorization/);
    t.match((await app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer('pds_nope') })).json(), {
      statusCode: 401,
      message: /not valid/,
    });

    const doomed = (await issue('doomed', 'viewer')).json();
    t.equal((await app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(doomed.token) })).statusCode, 200);
    const revoked = await app.inject({ method: 'DELETE', url: `/v1/tokens/${doomed.id}`, headers: auth });
    t.equal(revoked.statusCode, 200);
    t.ok(revoked.json().revokedAt);
    const after = await app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(doomed.token) });
    t.equal(after.statusCode, 401);
    t.match(after.json().message, /has been revoked/);

    const old = (await issue('old', 'viewer')).json();
    await models.ApiToken.updateOne({ id: old.id }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    t.match((await app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(old.token) })).json().message, /has expired/);
    t.equal((await app.inject({ method: 'DELETE', url: '/v1/tokens/nope', headers: auth })).statusCode, 404);
  });

  t.test('a token request with a bad role or an unknown field is a 400 naming it', async (t) => {
    t.match((await issue('x', 'root')).json(), { statusCode: 400, message: /role/ });
    const extra = await app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: auth,
      payload: { name: 'x', role: 'viewer', scope: 'all' },
    });
    t.match(extra.json(), { statusCode: 400, message: /scope|additional/ });
  });

  t.test('every change is in the audit log: who, what, on what, outcome; admins page through it', async (t) => {
    // Entries are written after each answer is sent; give the last one a moment.
    await new Promise((r) => setTimeout(r, 200));
    const read = async (query: string, headers = auth) => app.inject({ method: 'GET', url: `/v1/audit${query}`, headers });
    const all = (await read('?limit=500')).json().items as {
      action: string;
      actor: { name: string };
      outcome: string;
      statusCode: number;
      targetId?: string;
    }[];
    t.ok(all.some((e) => e.action === 'resource.create' && e.actor.name === 'ci' && e.outcome === 'success' && e.targetId));
    t.ok(
      all.some((e) => e.action === 'resource.create' && e.actor.name === 'dashboards' && e.outcome === 'failure' && e.statusCode === 403),
    );
    t.ok(all.some((e) => e.action === 'job.create' && e.actor.name === 'ci' && e.statusCode === 403));
    t.ok(all.some((e) => e.action === 'token.revoke' && e.actor.name === 'ADMIN_TOKEN'));
    t.notOk(
      all.some((e) => e.statusCode === 401),
      '401s have no actor and are not recorded',
    );

    const creates = (await read('?action=token.create')).json().items;
    t.ok(creates.length >= 4);
    t.ok(creates.every((e: { action: string }) => e.action === 'token.create'));

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (await read(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`)).json();
      seen.push(...page.items.map((e: { id: string }) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    t.equal(seen.length, all.length, 'pages add up to the whole log');
    t.equal(new Set(seen).size, seen.length, 'no entry twice');

    t.equal((await read('', bearer(viewer.token))).statusCode, 403);
    t.match((await read('?cursor=garbage')).json(), { statusCode: 400, message: /cursor/ });
  });

  t.test('/metrics counts requests and times them by route', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    t.equal(res.statusCode, 200);
    t.match(res.body, /api_requests_total\{code="403",method="POST",route="\/v1\/resources"\} \d+/);
    t.match(res.body, /api_request_duration_seconds_bucket\{method="GET",route="\/v1\/jobs",le="0.1"\} \d+/);
    t.match(res.body, /api_request_duration_seconds_count\{method="POST",route="\/v1\/tokens"\} \d+/);
  });
});

t.test('stream tickets: any role gets a single-use ticket for a job or the socket, bound to its token', async (t) => {
  const lines: string[] = [];
  const { app, models } = await startApi(t, { logs: (line) => lines.push(line) });
  const viewer = (
    await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth, payload: { name: 'browser', role: 'viewer' } })
  ).json();
  const asViewer = { authorization: `Bearer ${viewer.token}` };
  await models.StackJob.create({
    _id: 'job-1',
    resourceId: 'r',
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn: 'organization/p/s',
    operation: 'up',
    status: 'queued',
  });
  const forJob = await app.inject({ method: 'POST', url: '/v1/stream-tickets', headers: asViewer, payload: { jobId: 'job-1' } });
  t.equal(forJob.statusCode, 201);
  t.match(forJob.json(), { ticket: /^pst_[A-Za-z0-9_-]{43}$/, jobId: 'job-1', expiresAt: String });
  const lifetime = Date.parse(forJob.json().expiresAt) - Date.now();
  t.ok(lifetime > 50_000 && lifetime <= 60_000, 'valid for 60 s');
  t.match((await app.inject({ method: 'POST', url: '/v1/stream-tickets', headers: asViewer, payload: {} })).json(), { ticket: /^pst_/ });
  t.match((await app.inject({ method: 'POST', url: '/v1/stream-tickets', headers: asViewer, payload: { jobId: 'nope' } })).json(), {
    statusCode: 404,
  });
  t.equal((await app.inject({ method: 'POST', url: '/v1/stream-tickets', payload: {} })).statusCode, 401);

  // Request logs carry the path without its query string: a token or ticket there never reaches a log.
  await app.inject({ method: 'GET', url: `/v1/jobs?token=${viewer.token}&ticket=${forJob.json().ticket}`, headers: asViewer });
  const logged = lines.join('\n');
  t.match(logged, /"url":"\/v1\/jobs"/);
  t.notMatch(logged, viewer.token);
  t.notMatch(logged, forJob.json().ticket);
});
