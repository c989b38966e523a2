import { randomUUID } from 'node:crypto';
import { sampleCredentials } from '@pds/devkit';
import { recordStackState, roleAllows, type Role } from '@pds/shared';
import t from 'tap';
import { startApi } from './harness.js';
import { caller, type Method, tenantManifest, tenantsWithTokens } from './tenant-helpers.js';

/**
 * Every documented route × {own tenant, other tenant, platform} × role, against objects of tenant
 * `acme`: a role below the route's gets 403 wherever it comes from; acme's roles that may get in;
 * beta's roles that may call the route get 404 for any acme object (existence does not leak), 403 for
 * creating in acme, and lists without anything of acme; the platform admin gets in everywhere.
 */
t.test('route × tenant × role', async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const gcp = sampleCredentials().gcp.fields;
  const unique = () => `m-${randomUUID().slice(0, 8)}`;
  const created = async (method: Method, url: string, payload: object | string) => {
    const res = await platform(method, url, payload);
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.body}`);
    return res.json();
  };
  const acmeIds = new Set<string>();
  const remember = <T extends { id: string }>(value: T) => (acmeIds.add(value.id), value);

  // Fresh acme objects for each request, so a delete or a cancel never spoils the next caller's target.
  const freshResource = async () => {
    const name = unique();
    return { ...remember(await created('POST', '/v1/resources?tenant=acme', tenantManifest('acme', name))), name };
  };
  const freshJob = async () =>
    remember(await created('POST', `/v1/resources/${(await freshResource()).id}/jobs`, { operation: 'preview' }));
  // acme's uploaded template, with two versions published through the store (publishing needs a
  // runner, which this harness has none of).
  await created('POST', '/v1/templates', { name: 'Site', tenant: 'acme' });
  let versions = 0;
  const freshVersion = async (state: 'draft' | 'published', defaults: object = {}) => {
    const version = `3.0.${versions++}`;
    const files = [{ path: 'index.js', content: 'exports.ok = 1;\n' }];
    await created('POST', '/v1/templates/Site/versions?tenant=acme', {
      version,
      files,
      defaults,
      parameters: { type: 'object', additionalProperties: false },
    });
    if (state === 'published')
      await models.TemplateVersion.updateOne({ name: 'Site', version }, { $set: { state, sha256: '0'.repeat(64) } });
    return { id: version };
  };
  await freshVersion('published');
  await freshVersion('published');
  const siteManifest = () => `apiVersion: deploy.pulumi.dev/v1\nkind: Site\nmetadata:\n  name: ${unique()}\nspec: {}\n`;
  /** A fresh acme resource whose stack has one state version (written as a runner writes it). */
  const freshStatefulResource = async () => {
    const resource = await freshResource();
    const deployment = JSON.stringify({
      resources: [{ urn: `urn:pulumi:x::y::pulumi:pulumi:Stack::${resource.name}`, type: 'pulumi:pulumi:Stack' }],
    });
    await recordStackState(
      models,
      { _id: randomUUID(), tenantId: 'acme', resourceId: resource.id, stackFqdn: 'o/p/s', operation: 'up' },
      deployment,
      {},
    );
    return resource;
  };
  /** A fresh acme webhook (earlier ones deleted: a tenant has at most 20) with one ended delivery. */
  const freshWebhook = async () => {
    await models.Webhook.deleteMany({ tenantId: 'acme' });
    const hook = remember(
      await created('POST', '/v1/webhooks', { url: 'https://203.0.113.10/hook', events: ['update_failed'], tenant: 'acme' }),
    );
    await models.WebhookDelivery.updateOne({ _id: hook.pingDelivery }, { $set: { status: 'failed' } });
    return { id: hook.id as string, deliveryId: hook.pingDelivery as string };
  };
  const targets: Record<string, () => Promise<{ id: string; name?: string; deliveryId?: string }>> = {
    '/v1/webhooks/{id}': freshWebhook,
    // A gated up awaiting its decision (set through the store: no runner runs its preview here).
    '/v1/jobs/{id}/approvals': async () => {
      const resource = await freshResource();
      const job = remember(await created('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'up', requireApproval: true }));
      await models.StackJob.updateOne({ _id: job.id }, { $set: { status: 'awaiting_approval', 'approval.allowSelfApproval': true } });
      return job;
    },
    // A resource with a schedule (GET and DELETE need one; PUT sets one).
    '/v1/resources/{id}/drift-schedule': async () => {
      const resource = await freshResource();
      await models.Resource.updateOne(
        { _id: resource.id },
        {
          $set: {
            driftSchedule: JSON.stringify({
              cron: '0 * * * *',
              autoRemediate: false,
              ignore: [],
              paused: true,
              updatedBy: 'm',
              updatedAt: new Date().toISOString(),
            }),
          },
        },
      );
      return resource;
    },
    '/v1/webhooks/{id}/deliveries': freshWebhook,
    '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver': freshWebhook,
    '/v1/resources/{id}/stack/versions/{seq}': freshStatefulResource,
    '/v1/resources/{id}/stack/diff': freshStatefulResource,
    '/v1/resources/{id}/stack/export': freshStatefulResource,
    '/v1/resources/{id}/stack/import': freshStatefulResource,
    '/v1/resources/{id}/upgrade': async () => remember(await created('POST', '/v1/resources?tenant=acme', siteManifest())),
    '/v1/templates/{name}/versions/{version}': async () => freshVersion('draft'),
    'PATCH /v1/templates/{name}/versions/{version}': async () => freshVersion('published'),
    '/v1/templates/{name}/versions/{version}/publish': async () => freshVersion('draft', { unknown: true }),
    '/v1/resources/{id}': freshResource,
    '/v1/resources/{id}/jobs': freshResource,
    '/v1/resources/{id}/stack': freshStatefulResource,
    '/v1/resources/{id}/outputs': freshStatefulResource,
    '/v1/resources/{id}/stack/versions': freshStatefulResource,
    '/v1/jobs/{id}': freshJob,
    '/v1/jobs/{id}/cancel': freshJob,
    '/v1/jobs/{id}/lines': freshJob,
    '/v1/credentials/{id}': async () =>
      remember(await created('POST', '/v1/credentials', { name: unique(), provider: 'gcp', tenant: 'acme', ...gcp })),
    '/v1/tokens/{id}': async () => remember(await created('POST', '/v1/tokens', { name: unique(), role: 'viewer', tenant: 'acme' })),
    '/v1/tenants/{id}': async () => ({ id: 'acme' }),
    '/v1/tenants/{id}/policy': async () => ({ id: 'acme' }),
  };
  const bodies: Record<string, (target?: { id: string; name?: string }) => object | string> = {
    'POST /v1/resources': () => tenantManifest('acme', unique()),
    'PUT /v1/resources/{id}': (target) => tenantManifest('acme', target!.name!),
    'POST /v1/resources/{id}/jobs': () => ({ operation: 'preview' }),
    'POST /v1/jobs/{id}/cancel': () => ({}),
    'POST /v1/credentials': () => ({ name: unique(), provider: 'gcp', tenant: 'acme', ...gcp }),
    'PUT /v1/credentials/{id}': () => gcp,
    'POST /v1/tokens': () => ({ name: unique(), role: 'viewer', tenant: 'acme' }),
    'POST /v1/tenants': () => ({ name: unique() }),
    'PATCH /v1/tenants/{id}': () => ({ description: 'matrix' }),
    'PUT /v1/tenants/{id}/policy': () => ({}),
    'POST /v1/resources/{id}/upgrade': () => ({ version: '3.0.0' }),
    'POST /v1/templates': () => ({ name: unique(), tenant: 'acme' }),
    'PATCH /v1/templates/{name}/versions/{version}': () => ({ state: 'deprecated' }),
    'POST /v1/templates/{name}/versions/{version}/publish': () => ({}),
    'POST /v1/resources/{id}/stack/import': () => ({ version: 3, deployment: { resources: [] } }),
    'PUT /v1/resources/{id}/drift-schedule': () => ({ cron: '0 * * * *' }),
    'POST /v1/jobs/{id}/approvals': () => ({ decision: 'approve' }),
    'POST /v1/webhooks': () => ({ url: 'https://203.0.113.10/hook', events: ['update_succeeded'], tenant: 'acme' }),
    'PATCH /v1/webhooks/{id}': () => ({ events: ['update_succeeded', 'destroy_failed'] }),
    'POST /v1/webhooks/{id}/deliveries/{deliveryId}/redeliver': () => ({}),
    'POST /v1/templates/{name}/versions': () => ({ version: `4.0.${versions++}`, files: [{ path: 'index.js', content: '' }] }),
    'PUT /v1/templates/{name}/versions/{version}': () => ({ files: [{ path: 'index.js', content: 'exports.v = 2;\n' }] }),
  };
  /** Creates in a tenant name it as `?tenant=` when their body is not JSON. */
  const tenantQuery: Record<string, string> = { 'POST /v1/resources': '?tenant=acme' };

  const doc = (await platform('GET', '/docs/json')).json() as { paths: Record<string, Record<string, { 'x-access'?: string }>> };
  const routes = Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        path,
        method: method.toUpperCase() as Method,
        access: op['x-access'] as Role | 'public',
      })),
    )
    .filter((r) => r.access !== 'public');
  t.ok(routes.length >= 20, `${routes.length} protected routes`);

  const callers = [
    ...(['viewer', 'deployer', 'admin'] as const).map((role) => ({
      who: `acme ${role}`,
      tenant: 'acme',
      role,
      call: caller(app, tokens.acme![role]),
    })),
    ...(['viewer', 'deployer', 'admin'] as const).map((role) => ({
      who: `beta ${role}`,
      tenant: 'beta',
      role,
      call: caller(app, tokens.beta![role]),
    })),
    { who: 'platform', tenant: undefined, role: 'platform' as const, call: platform },
  ];

  const wrong: string[] = [];
  let sent = 0;
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    for (const who of callers) {
      const targetOf = targets[key] ?? targets[route.path];
      const target = targetOf ? await targetOf() : undefined;
      if (route.path.includes('{id}') && !target) throw new Error(`no target for ${route.path}`);
      let url = route.path
        .replace('{id}', target?.id ?? '')
        .replace('{name}', 'Site')
        .replace('{version}', target?.id ?? '3.0.0')
        .replace('{seq}', '1')
        .replace('{deliveryId}', target?.deliveryId ?? '');
      if (route.method === 'GET' && !route.path.includes('{id}') && route.path !== '/v1/tenants') url += '?tenant=acme';
      else if (route.path.startsWith('/v1/templates/')) url += '?tenant=acme';
      url += tenantQuery[key] ?? '';
      let body = bodies[key]?.(target);
      if (key === 'POST /v1/stream-tickets') body = { jobId: (await freshJob()).id };
      if ((route.method === 'POST' || route.method === 'PUT' || route.method === 'PATCH') && body === undefined)
        throw new Error(`no body for ${key}`);
      const res = await who.call(route.method, url, body);
      sent++;
      const got = `${key} by ${who.who} → ${res.statusCode}`;
      let expected: string;
      if (!roleAllows(who.role, route.access as Role)) expected = '403';
      // Without a runner, publishing stops at its first check (a draft whose defaults do not validate): past access.
      else if (who.tenant !== 'beta' && key.endsWith('/publish')) expected = '400';
      // Who may decide is the tenant's approver role (admin by default), checked past the route's viewer.
      else if (who.tenant === 'acme' && key === 'POST /v1/jobs/{id}/approvals' && !roleAllows(who.role, 'admin')) expected = '403';
      else if (who.tenant !== 'beta') expected = '2xx';
      else if (route.path.includes('{id}') || key === 'POST /v1/stream-tickets') expected = '404';
      // The catalogue is no tenant's; read for acme, it would show acme's policy: refused.
      else if (route.path.startsWith('/v1/templates')) expected = '403';
      else if (route.method === 'GET') expected = '2xx without acme';
      else expected = '403';
      const ok =
        expected === '2xx'
          ? res.statusCode >= 200 && res.statusCode < 300
          : expected === '2xx without acme'
            ? res.statusCode === 200 && ![...acmeIds].some((id) => res.body.includes(id)) && !res.body.includes('"acme"')
            : String(res.statusCode) === expected;
      if (!ok) wrong.push(`${got}, expected ${expected}: ${res.body.slice(0, 200)}`);
    }
  }
  t.same(wrong, [], `${sent} requests (${routes.length} routes × ${callers.length} callers): every answer as expected`);
  t.comment(`tenant matrix: ${routes.length} routes × ${callers.length} callers = ${sent} requests, ${wrong.length} unexpected`);
});
