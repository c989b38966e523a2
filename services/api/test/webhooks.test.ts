import { Keyring, resealWebhookSecrets, WebhookAddressPolicy, type WebhookDoc, webhookSecretKey } from '@pds/shared';
import t from 'tap';
import { CREDENTIALS_KEY, startApi } from './harness.js';
import { caller, tenantsWithTokens } from './tenant-helpers.js';

const PUBLIC_URL = 'https://203.0.113.10/hook';

t.test('webhook URLs that reach inside are refused unless allowed; the check is on addresses, not names', async (t) => {
  const policy = new WebhookAddressPolicy();
  for (const address of [
    '127.0.0.1',
    '10.1.2.3',
    '172.20.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
  ])
    t.ok(policy.refusal(address), `${address} refused`);
  for (const address of ['203.0.113.10', '8.8.8.8', '2001:db8::1']) t.notOk(policy.refusal(address), `${address} allowed`);
  const allowing = new WebhookAddressPolicy('127.0.0.1/32,10.1.0.0/16');
  t.notOk(allowing.refusal('127.0.0.1'));
  t.notOk(allowing.refusal('10.1.2.3'));
  t.ok(allowing.refusal('10.2.0.1'), 'only the ranges allowed');
  t.ok(allowing.refusal('127.0.0.2'));
  t.match(
    await policy.urlRefusal(new URL('http://localhost:8080/')),
    /localhost resolves to .* loopback/,
    'a name is judged by what it resolves to',
  );

  const { app } = await startApi(t);
  const platform = caller(app);
  for (const [url, why] of [
    ['http://169.254.169.254/latest/meta-data', /url: 169\.254\.169\.254 is a private, loopback or link-local address/],
    ['http://10.0.0.1/', /url: 10\.0\.0\.1 is a private/],
    ['http://[::1]:3000/', /url: ::1 is a private/],
    ['http://localhost/', /url: localhost resolves to/],
    ['ftp://203.0.113.10/', /url: ftp: is not http: or https:/],
    ['https://user:pass@203.0.113.10/', /url: no user or password/],
    ['not a url', /url: not an absolute URL/],
  ] as const) {
    const res = await platform('POST', '/v1/webhooks', { url, events: ['update_succeeded'] });
    t.equal(res.statusCode, 400, url);
    t.match(res.json().message, why, url);
  }
  t.equal(await app.deps.models.Webhook.countDocuments(), 0, 'none was stored');
});

t.test('webhooks: the secret is shown once, sealed at rest; bad input names its field; tenants see their own only', async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = caller(app, tokens.acme!.admin);
  const beta = caller(app, tokens.beta!.admin);

  const created = await acme('POST', '/v1/webhooks', { url: PUBLIC_URL, events: ['update_succeeded', 'destroy_failed'] });
  t.equal(created.statusCode, 201, created.body);
  const hook = created.json();
  t.match(hook, {
    tenant: 'acme',
    url: PUBLIC_URL,
    events: ['update_succeeded', 'destroy_failed'],
    active: true,
    secret: /^whsec_/,
    pingDelivery: /^msg_/,
  });
  const stored = await models.Webhook.findById(hook.id).lean<WebhookDoc>();
  t.notOk(JSON.stringify(stored).includes(hook.secret.slice(6)), 'the store holds it sealed');
  t.equal(new Keyring(CREDENTIALS_KEY).open(stored!.sealedSecret, hook.id), hook.secret, 'and the runners can open it');
  for (const [method, url] of [
    ['GET', `/v1/webhooks/${hook.id}`],
    ['GET', '/v1/webhooks'],
  ] as const) {
    const res = await acme(method, url);
    t.equal(res.statusCode, 200);
    t.notOk(res.body.includes(hook.secret.slice(6)), `${url} does not show the secret`);
  }
  const audit = await models.AuditEntry.find({ targetId: hook.id }).lean();
  t.ok(audit.length > 0, 'the creation is audited');
  t.notOk(JSON.stringify(audit).includes(hook.secret.slice(6)), 'without the secret');
  t.match(
    (await acme('GET', `/v1/webhooks/${hook.id}/deliveries`)).json().items,
    [{ id: hook.pingDelivery, event: 'ping', status: 'pending', payload: { type: 'ping', data: { webhookId: hook.id, tenant: 'acme' } } }],
    'the ping waits for a runner',
  );

  const own = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
  const chosen = await acme('POST', '/v1/webhooks', { url: PUBLIC_URL, events: ['update_failed'], secret: own });
  t.equal(chosen.json().secret, own, "the receiver's own secret is taken");
  t.ok(webhookSecretKey(own));
  for (const [body, field] of [
    [{ url: PUBLIC_URL, events: ['update_exploded'] }, /events/],
    [{ url: PUBLIC_URL, events: [] }, /events/],
    [
      { url: PUBLIC_URL, events: ['update_failed'], secret: 'whsec_' + Buffer.alloc(8).toString('base64') + 'AAAAAAAAAAAAAAAAAAAAAAAA!' },
      /secret/,
    ],
    [{ url: PUBLIC_URL, events: ['update_failed'], secret: 'x'.repeat(40) }, /secret: a Standard Webhooks secret/],
    [{ events: ['update_failed'] }, /url/],
    [{ url: PUBLIC_URL, events: ['update_failed'], extra: 1 }, /body\.extra: unknown field/],
  ] as const) {
    const res = await acme('POST', '/v1/webhooks', body);
    t.equal(res.statusCode, 400, JSON.stringify(body));
    t.match(res.json().message, field);
  }

  t.equal((await beta('GET', `/v1/webhooks/${hook.id}`)).statusCode, 404, "another tenant's webhook is unknown");
  t.equal((await beta('PATCH', `/v1/webhooks/${hook.id}`, { active: false })).statusCode, 404);
  t.equal((await beta('DELETE', `/v1/webhooks/${hook.id}`)).statusCode, 404);
  t.equal((await beta('GET', `/v1/webhooks/${hook.id}/deliveries`)).statusCode, 404);
  t.same((await beta('GET', '/v1/webhooks')).json().items, [], 'nor listed');
  t.equal((await caller(app, tokens.acme!.deployer)('GET', '/v1/webhooks')).statusCode, 403, 'admins only');
  t.equal((await beta('POST', '/v1/webhooks', { url: PUBLIC_URL, events: ['update_failed'], tenant: 'acme' })).statusCode, 403);

  const patched = await acme('PATCH', `/v1/webhooks/${hook.id}`, { events: ['preview_failed'], active: false, secret: own });
  t.match(patched.json(), { events: ['preview_failed'], active: false });
  t.notOk('secret' in patched.json());
  t.equal(
    new Keyring(CREDENTIALS_KEY).open((await models.Webhook.findById(hook.id).lean<WebhookDoc>())!.sealedSecret, hook.id),
    own,
    'rotated',
  );
  t.equal((await acme('PATCH', `/v1/webhooks/${hook.id}`, {})).statusCode, 400, 'a change needs a field');

  t.equal(
    (await acme('POST', `/v1/webhooks/${hook.id}/deliveries/${hook.pingDelivery}/redeliver`)).statusCode,
    409,
    'a message still being tried is not queued twice',
  );
  await models.WebhookDelivery.updateOne({ _id: hook.pingDelivery }, { $set: { status: 'failed' } });
  const again = await acme('POST', `/v1/webhooks/${hook.id}/deliveries/${hook.pingDelivery}/redeliver`);
  t.equal(again.statusCode, 202, again.body);
  t.match(again.json(), { id: hook.pingDelivery, status: 'pending', redeliveries: 1 });
  t.equal((await acme('POST', `/v1/webhooks/${hook.id}/deliveries/msg_nope/redeliver`)).statusCode, 404);

  for (let i = await models.Webhook.countDocuments({ tenantId: 'acme' }); i < 20; i++)
    t.equal((await acme('POST', '/v1/webhooks', { url: PUBLIC_URL, events: ['update_failed'] })).statusCode, 201);
  const over = await acme('POST', '/v1/webhooks', { url: PUBLIC_URL, events: ['update_failed'] });
  t.equal(over.statusCode, 409);
  t.match(over.json().message, /20 webhooks, the most it may have/);
  t.equal(
    (await platform('POST', '/v1/webhooks', { url: PUBLIC_URL, events: ['update_failed'], tenant: 'beta' })).statusCode,
    201,
    "another tenant's count is its own",
  );

  const rotated = new Keyring(Buffer.alloc(32, 11).toString('base64'), [CREDENTIALS_KEY]);
  const count = await models.Webhook.countDocuments();
  t.equal(await resealWebhookSecrets(models, rotated), count, 'a key rotation re-seals every webhook secret');
  t.equal(await resealWebhookSecrets(models, rotated), 0, 'once');
  const resealed = (await models.Webhook.findById(hook.id).lean<WebhookDoc>())!.sealedSecret;
  t.equal(new Keyring(Buffer.alloc(32, 11).toString('base64')).open(resealed, hook.id), own, 'the new key alone opens it');

  t.equal((await acme('DELETE', `/v1/webhooks/${hook.id}`)).statusCode, 204);
  t.equal((await acme('GET', `/v1/webhooks/${hook.id}`)).statusCode, 404);
  t.equal(await models.WebhookDelivery.countDocuments({ webhookId: hook.id }), 0, 'its deliveries went with it');
});
