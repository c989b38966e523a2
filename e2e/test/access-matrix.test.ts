import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { sampleCredentials } from '@pds/devkit';
import { createLogger, createRedis, Keyring, recordStackState, redisReady } from '@pds/shared';
import t from 'tap';
import { EXTRA_METHODS, MANGLED_FORMS } from './access-catalogue.js';
import { createJob } from './gateway-harness.js';
import { CREDENTIALS_KEY, createResource, startStack, TOKEN } from './harness.js';

/**
 * Deny by default, decided by the matched route: every route of the served OpenAPI document and
 * every route of the gateway, in every mangled form of the catalogue, with no token and with a
 * token of too low a role, over raw sockets (so the bytes sent are exactly the form), as plain
 * HTTP, SSE and WebSocket upgrades: never a 2xx, a 3xx, an upgrade or a streamed line.
 */

interface Answer {
  status: number;
  head: string;
}

/** Sends one request exactly as written and reads the status line and headers of the answer. */
function rawRequest(port: number, method: string, target: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${method} ${target}`));
    }, 10_000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
      resolve({ status, head: received.split('\r\n\r\n')[0] ?? '' });
    };
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      // The head is all we judge by; a streaming answer would never end by itself.
      if (received.includes('\r\n\r\n')) done();
    });
    socket.on('end', done);
    socket.on('error', (err) => {
      clearTimeout(timer);
      // A server that resets a request it refuses has not let it in.
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve({ status: 0, head: 'reset' });
      else reject(err);
    });
    const lines = [`${method} ${target} HTTP/1.1`, 'host: localhost', 'connection: close'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
  });
}

const UPGRADE = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
};

t.test('no route answers a caller without a token, or with too low a role, in any request form', async (t) => {
  const stack = await startStack(t);
  await stack.api.listen({ host: '127.0.0.1', port: 0 });
  const apiPort = (stack.api.server.address() as { port: number }).port;
  const gatewayPort = Number(new URL(stack.gatewayUrl).port);
  const admin = { authorization: `Bearer ${TOKEN}` };
  const issue = async (role: string) =>
    (await stack.api.inject({ method: 'POST', url: '/v1/tokens', headers: admin, payload: { name: `matrix-${role}`, role } })).json()
      .token as string;
  const tokens = { viewer: await issue('viewer'), deployer: await issue('deployer'), admin: await issue('admin') };
  /** The token one role below the least role a route needs (none below viewer; a tenant's admin below platform). */
  const lower: Record<string, string | undefined> = {
    viewer: undefined,
    deployer: tokens.viewer,
    admin: tokens.deployer,
    platform: tokens.admin,
  };

  // Real ids, so that a request let through would reach a real object and succeed.
  const resource = await createResource(
    stack,
    `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: matrix\nspec:\n  directory: /tmp/matrix-${randomUUID()}\n  files: []\n`,
  );
  const logger = createLogger({ name: 'matrix', level: 'silent' });
  const publisher = createRedis(stack.config.REDIS_URL, 'worker', logger);
  t.teardown(() => publisher.quit().catch(() => publisher.disconnect()));
  await redisReady(publisher);
  const job = await createJob(stack.models, publisher, 'running');
  job.sink.line('stdout', 'a line nobody without a token may read');
  await job.finish();
  const gcp = sampleCredentials().gcp.fields;
  const credential = (
    await stack.api.inject({ method: 'POST', url: '/v1/credentials', headers: admin, payload: { name: 'matrix', provider: 'gcp', ...gcp } })
  ).json();
  const token = (await stack.api.inject({ method: 'GET', url: '/v1/tokens', headers: admin })).json().items[0];
  // A platform template with two published versions (set through the store: no publish needed to test access) and a draft.
  const templateFiles = [{ path: 'index.js', content: 'exports.ok = 1;\n' }];
  await stack.api.inject({ method: 'POST', url: '/v1/templates', headers: admin, payload: { name: 'MatrixT' } });
  for (const version of ['1.0.0', '1.1.0', '2.0.0']) {
    await stack.api.inject({
      method: 'POST',
      url: '/v1/templates/MatrixT/versions',
      headers: admin,
      payload: { version, files: templateFiles },
    });
  }
  await stack.models.TemplateVersion.updateMany(
    { name: 'MatrixT', version: { $ne: '2.0.0' } },
    { $set: { state: 'published', sha256: '0'.repeat(64) } },
  );
  const pinned = await createResource(stack, 'apiVersion: deploy.pulumi.dev/v1\nkind: MatrixT\nmetadata:\n  name: pinned\nspec: {}\n');
  let versions = 0;
  // One state version of the resource's stack, as a runner writes it, so that its reads have something to show.
  await recordStackState(
    stack.models,
    { _id: randomUUID(), tenantId: 'default', resourceId: resource.id, stackFqdn: resource.stackFqdn, operation: 'up' },
    JSON.stringify({ resources: [] }),
    {},
  );
  // A webhook and a delivery, written to the store (created through the API, it would send a ping out).
  const webhookId = randomUUID();
  await stack.models.Webhook.create({
    _id: webhookId,
    tenantId: 'default',
    url: 'https://203.0.113.10/hook',
    events: ['update_failed'],
    sealedSecret: new Keyring(CREDENTIALS_KEY).seal('whsec_' + Buffer.alloc(32, 1).toString('base64'), webhookId),
    createdBy: 'matrix',
  });
  const deliveryId = 'msg_matrix';
  await stack.models.WebhookDelivery.create({
    _id: deliveryId,
    webhookId,
    tenantId: 'default',
    event: 'ping',
    payload: '{}',
    status: 'failed',
  });
  // A drift schedule (paused: it fires nothing), so that the admin's control read finds one.
  await stack.models.Resource.updateOne(
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
  const ids: Record<string, string> = {
    '/v1/webhooks/{id}': webhookId,
    '/v1/jobs/{id}/approvals': job.jobId,
    '/v1/resources/{id}/drift-schedule': resource.id,
    '/v1/webhooks/{id}/deliveries': webhookId,
    '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver': webhookId,
    '/v1/resources/{id}/stack': resource.id,
    '/v1/resources/{id}/outputs': resource.id,
    '/v1/resources/{id}/stack/versions': resource.id,
    '/v1/resources/{id}/stack/versions/{seq}': resource.id,
    '/v1/resources/{id}/stack/diff': resource.id,
    '/v1/resources/{id}/stack/export': resource.id,
    '/v1/resources/{id}/stack/import': resource.id,
    '/v1/resources/{id}/upgrade': pinned.id,
    '/v1/templates/{name}/versions': 'MatrixT',
    '/v1/templates/{name}/versions/{version}': 'MatrixT',
    '/v1/templates/{name}/versions/{version}/publish': 'MatrixT',
    '/v1/resources/{id}': resource.id,
    '/v1/resources/{id}/jobs': resource.id,
    '/v1/jobs/{id}': job.jobId,
    '/v1/jobs/{id}/cancel': job.jobId,
    '/v1/jobs/{id}/lines': job.jobId,
    '/v1/credentials/{id}': credential.id,
    '/v1/tokens/{id}': token.id,
    '/v1/tenants/{id}': 'default',
    '/v1/tenants/{id}/policy': 'default',
    '/v1/templates/{name}': 'LocalFileSet',
    '/v1/templates/{name}/schema': 'LocalFileSet',
  };
  const manifest = (name: string) =>
    `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: /tmp/matrix-${name}\n  files: []\n`;
  /** A valid body for every route that takes one, so that only access can stop it. */
  const bodies: Record<string, () => { type: string; text: string }> = {
    'POST /v1/resources': () => ({ type: 'application/yaml', text: manifest(`m-${randomUUID().slice(0, 8)}`) }),
    'PUT /v1/resources/{id}': () => ({ type: 'application/yaml', text: manifest('matrix') }),
    'POST /v1/resources/{id}/jobs': () => ({ type: 'application/json', text: JSON.stringify({ operation: 'preview' }) }),
    'POST /v1/jobs/{id}/cancel': () => ({ type: 'application/json', text: '{}' }),
    'POST /v1/credentials': () => ({
      type: 'application/json',
      text: JSON.stringify({ name: `c-${randomUUID().slice(0, 8)}`, provider: 'gcp', ...gcp }),
    }),
    'PUT /v1/credentials/{id}': () => ({ type: 'application/json', text: JSON.stringify(gcp) }),
    'POST /v1/tokens': () => ({ type: 'application/json', text: JSON.stringify({ name: 'intruder', role: 'admin' }) }),
    'POST /v1/stream-tickets': () => ({ type: 'application/json', text: '{}' }),
    'POST /v1/tenants': () => ({ type: 'application/json', text: JSON.stringify({ name: `t-${randomUUID().slice(0, 8)}` }) }),
    'PATCH /v1/tenants/{id}': () => ({ type: 'application/json', text: JSON.stringify({ description: 'intruder' }) }),
    'PUT /v1/tenants/{id}/policy': () => ({ type: 'application/json', text: JSON.stringify({ templatesByDefault: 'deny' }) }),
    'POST /v1/resources/{id}/upgrade': () => ({ type: 'application/json', text: JSON.stringify({ version: '1.0.0' }) }),
    'POST /v1/templates': () => ({ type: 'application/json', text: JSON.stringify({ name: `T${randomUUID().slice(0, 8)}` }) }),
    'POST /v1/templates/{name}/versions': () => ({
      type: 'application/json',
      text: JSON.stringify({ version: `5.0.${versions++}`, files: templateFiles }),
    }),
    'PUT /v1/templates/{name}/versions/{version}': () => ({ type: 'application/json', text: JSON.stringify({ files: templateFiles }) }),
    'PATCH /v1/templates/{name}/versions/{version}': () => ({ type: 'application/json', text: JSON.stringify({ state: 'deprecated' }) }),
    'POST /v1/templates/{name}/versions/{version}/publish': () => ({ type: 'application/json', text: '{}' }),
    'POST /v1/jobs/{id}/approvals': () => ({ type: 'application/json', text: JSON.stringify({ decision: 'approve' }) }),
    'PUT /v1/resources/{id}/drift-schedule': () => ({ type: 'application/json', text: JSON.stringify({ cron: '0 * * * *' }) }),
    'POST /v1/webhooks': () => ({
      type: 'application/json',
      text: JSON.stringify({ url: 'https://203.0.113.10/hook', events: ['update_failed'] }),
    }),
    'PATCH /v1/webhooks/{id}': () => ({ type: 'application/json', text: JSON.stringify({ active: false }) }),
    'POST /v1/webhooks/{id}/deliveries/{deliveryId}/redeliver': () => ({ type: 'application/json', text: '{}' }),
    'POST /v1/resources/{id}/stack/import': () => ({
      type: 'application/json',
      text: JSON.stringify({ version: 3, deployment: { resources: [] } }),
    }),
  };

  const doc = (await stack.api.inject({ method: 'GET', url: '/docs/json' })).json() as {
    paths: Record<string, Record<string, { 'x-access'?: string; security?: unknown[] }>>;
  };
  const routes = Object.entries(doc.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, op]) => ({ path, method: method.toUpperCase(), access: op['x-access'] })),
  );
  const protectedRoutes = routes.filter((r) => r.access !== 'public');
  t.ok(protectedRoutes.length >= 15, `the document lists ${protectedRoutes.length} protected operations`);
  t.same(
    routes.filter((r) => r.access === undefined),
    [],
    'every documented operation says who may call it',
  );
  for (const route of protectedRoutes) {
    if (route.method === 'POST' || route.method === 'PUT' || route.method === 'PATCH')
      t.ok(bodies[`${route.method} ${route.path}`], `a valid body for ${route.method} ${route.path}`);
  }

  let sent = 0;
  const letThrough: string[] = [];
  const judge = (what: string, answer: Answer) => {
    sent++;
    if (answer.status >= 200 && answer.status < 400) letThrough.push(`${what} → ${answer.status}`);
  };

  for (const route of protectedRoutes) {
    const path = route.path
      .replace(/\{(id|name)\}/, ids[route.path] ?? 'missing-id')
      .replace('{version}', '2.0.0')
      .replace('{seq}', '1')
      .replace('{deliveryId}', deliveryId);
    const callers: [string, Record<string, string>][] = [['no token', {}]];
    const low = lower[route.access as string];
    if (low) callers.push([`a token below ${route.access}`, { authorization: `Bearer ${low}` }]);
    for (const form of MANGLED_FORMS) {
      // HEAD is the GET route's own (same decision); other methods would reach other routes.
      for (const method of [route.method, ...EXTRA_METHODS.filter((m) => m !== 'HEAD' || route.method === 'GET')]) {
        for (const [who, headers] of callers) {
          const body = method === route.method ? bodies[`${route.method} ${route.path}`]?.() : undefined;
          const answer = await rawRequest(
            apiPort,
            method,
            form.target(path, TOKEN),
            { ...headers, ...(body ? { 'content-type': body.type } : {}) },
            body?.text,
          );
          judge(`API ${method} ${route.path} [${form.name}] ${who}`, answer);
        }
      }
    }
  }

  // The gateway's routes come from the gateway itself; each is tried as a WebSocket upgrade and as SSE.
  const gatewayRoutes = stack.gateway
    .routeAccess()
    .filter((r) => r.access !== 'public' && r.method === 'GET')
    .map((r) => ({ path: r.url.replace(':id', job.jobId), modes: ['websocket', 'sse'] }));
  t.same(
    gatewayRoutes.map((r) => r.path).sort(),
    ['/v1/jobs/' + job.jobId + '/stream', '/v1/stream'].sort(),
    'the gateway streams on two routes',
  );
  for (const route of gatewayRoutes) {
    for (const form of MANGLED_FORMS) {
      for (const mode of route.modes) {
        const headers = mode === 'sse' ? { accept: 'text/event-stream' } : UPGRADE;
        const answer = await rawRequest(gatewayPort, 'GET', form.target(route.path, TOKEN), headers);
        judge(`gateway ${mode} ${route.path} [${form.name}] no token`, answer);
        if (answer.status === 101) letThrough.push(`gateway ${route.path} [${form.name}] upgraded`);
      }
      for (const method of EXTRA_METHODS)
        judge(`gateway ${method} ${route.path} [${form.name}]`, await rawRequest(gatewayPort, method, form.target(route.path, TOKEN), {}));
    }
  }

  t.same(letThrough, [], `${sent} requests sent; none let through`);
  t.comment(`access matrix: ${sent} requests (${MANGLED_FORMS.length} forms), ${letThrough.length} let through`);

  // The control: the same harness, with a token that may, does get in, so the refusals above are real.
  for (const route of protectedRoutes.filter((r) => r.method === 'GET')) {
    const path = route.path
      .replace(/\{(id|name)\}/, ids[route.path] ?? 'missing-id')
      .replace('{version}', '2.0.0')
      .replace('{seq}', '1')
      .replace('{deliveryId}', deliveryId);
    const answer = await rawRequest(apiPort, 'GET', path, admin);
    t.equal(answer.status, 200, `the admin token reads ${route.path}`);
  }
  t.equal(
    (await rawRequest(gatewayPort, 'GET', `/v1/jobs/${job.jobId}/stream`, { ...admin, ...UPGRADE })).status,
    101,
    'the admin token streams',
  );
});
