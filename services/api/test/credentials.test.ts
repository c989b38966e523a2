import { sampleCredentials } from '@pds/devkit';
import { type CredentialDoc, Keyring, liveJobs, openSecrets, resealCredentials } from '@pds/shared';
import t from 'tap';
import { auth, CREDENTIALS_KEY, startApi } from './harness.js';

const PROVIDERS = ['gcp', 'aws', 'azure', 'kubernetes', 'cloudflare'] as const;

t.test('credentials', async (t) => {
  const logs: string[] = [];
  const responses: string[] = [];
  const { app, models } = await startApi(t, { logs: (line) => logs.push(line) });
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => {
    const res = await app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });
    responses.push(res.body);
    return res;
  };
  const samples = sampleCredentials();
  const ids: Record<string, string> = {};

  t.test('every provider: created with its fields, answered with settings and a fingerprint, never a secret', async (t) => {
    for (const provider of PROVIDERS) {
      const res = await call('POST', '/v1/credentials', {
        name: `${provider}-main`,
        provider,
        labels: { team: 'platform' },
        ...samples[provider].fields,
      });
      t.equal(res.statusCode, 201, `${provider}: ${res.body}`);
      const body = res.json();
      t.match(body, {
        name: `${provider}-main`,
        provider,
        isDefault: true,
        labels: { team: 'platform' },
        fingerprint: /^sha256:[0-9a-f]{16}$/,
      });
      t.equal(body.keyId, Keyring.keyId(Buffer.from(CREDENTIALS_KEY, 'base64')));
      ids[provider] = body.id;
    }
    t.same((await call('GET', `/v1/credentials/${ids.gcp}`)).json().settings, {
      projectId: 'acme-prod',
      clientEmail: 'deployer@acme-prod.iam.gserviceaccount.com',
    });
    t.same((await call('GET', `/v1/credentials/${ids.aws}`)).json().settings, {
      accountId: '123456789012',
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      region: 'eu-west-1',
    });
    t.match((await call('GET', `/v1/credentials/${ids.kubernetes}`)).json().settings, {
      context: 'dev',
      server: 'https://k8s.example.internal:6443',
    });
  });

  t.test('a GCP key may be given as base64 of its JSON', async (t) => {
    const base64 = Buffer.from(sampleCredentials().gcp.fields.serviceAccountKey).toString('base64');
    const res = await call('POST', '/v1/credentials', { name: 'gcp-base64', provider: 'gcp', serviceAccountKey: base64, isDefault: false });
    t.equal(res.statusCode, 201);
    t.match(res.json(), { isDefault: false, settings: { projectId: 'acme-prod' } });
  });

  t.test('bad fields are 400s naming the field and saying what is wrong', async (t) => {
    const bad = async (payload: object) => (await call('POST', '/v1/credentials', { name: 'bad', ...payload })).json();
    t.match(await bad({ provider: 'gcp', serviceAccountKey: '{"type": "service_account"' }), {
      statusCode: 400,
      message: /serviceAccountKey: is not a service-account key/,
    });
    t.match(await bad({ provider: 'gcp', serviceAccountKey: '{"type":"authorized_user"}' }), {
      message: /serviceAccountKey: "type" must be "service_account"/,
    });
    t.match(await bad({ provider: 'aws', accountId: '12', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x'.repeat(40) }), {
      message: /accountId: must be 12 digits/,
    });
    t.match(await bad({ provider: 'aws', accountId: '123456789012', accessKeyId: 'AKIAIOSFODNN7EXAMPLE' }), {
      message: /secretAccessKey: is required for aws/,
    });
    t.match(await bad({ provider: 'azure', ...samples.azure.fields, tenantId: 'nope' }), { message: /tenantId: must be a UUID/ });
    t.match(await bad({ provider: 'kubernetes', kubeconfig: 'apiVersion: v1\nclusters: []\n' }), {
      message: /kubeconfig: has no clusters/,
    });
    t.match(await bad({ provider: 'cloudflare', ...samples.cloudflare.fields, region: 'eu-west-1' }), {
      message: /region: is not a field of cloudflare credentials/,
    });
    t.match(await bad({ provider: 'oracle', apiToken: 'x' }), { statusCode: 400, message: /provider/ });
    t.match(await bad({ provider: 'cloudflare', ...samples.cloudflare.fields, password: 'x' }), {
      statusCode: 400,
      message: /password|additional/,
    });
    t.match((await call('POST', '/v1/credentials', { name: 'Bad Name', provider: 'cloudflare', ...samples.cloudflare.fields })).json(), {
      statusCode: 400,
      message: /name/,
    });
    t.equal((await call('POST', '/v1/credentials', { name: 'aws-main', provider: 'aws', ...samples.aws.fields })).statusCode, 409);
  });

  t.test('one default per provider: a new default takes over; lists filter by provider and page', async (t) => {
    const second = await call('POST', '/v1/credentials', {
      name: 'aws-second',
      provider: 'aws',
      isDefault: true,
      ...sampleCredentials().aws.fields,
    });
    t.equal(second.json().isDefault, true);
    t.equal((await call('GET', `/v1/credentials/${ids.aws}`)).json().isDefault, false);
    const aws = (await call('GET', '/v1/credentials?provider=aws')).json().items;
    t.same(
      aws.map((c: { name: string }) => c.name),
      ['aws-second', 'aws-main'],
    );
    const first = (await call('GET', '/v1/credentials?limit=2')).json();
    t.equal(first.items.length, 2);
    const rest = (await call('GET', `/v1/credentials?limit=100&cursor=${first.nextCursor}`)).json();
    t.equal(first.items.length + rest.items.length, PROVIDERS.length + 2);
  });

  t.test('replacing the fields rotates the secret: new fingerprint, rotatedAt, name and provider kept', async (t) => {
    const before = (await call('GET', `/v1/credentials/${ids.cloudflare}`)).json();
    const rotated = sampleCredentials().cloudflare;
    const res = await call('PUT', `/v1/credentials/${ids.cloudflare}`, rotated.fields);
    t.equal(res.statusCode, 200);
    t.match(res.json(), { name: 'cloudflare-main', provider: 'cloudflare', rotatedAt: String });
    t.not(res.json().fingerprint, before.fingerprint);
    const doc = await models.Credential.findById(ids.cloudflare).lean<CredentialDoc>();
    t.same(openSecrets(new Keyring(CREDENTIALS_KEY), doc!), rotated.fields);
    t.match((await call('PUT', `/v1/credentials/${ids.cloudflare}`, { apiToken: 'short' })).json(), {
      statusCode: 400,
      message: /apiToken/,
    });
    t.equal((await call('PUT', '/v1/credentials/nope', rotated.fields)).statusCode, 404);
  });

  t.test('a credential in use by a running job cannot be deleted; otherwise it can', async (t) => {
    const job = await models.StackJob.create({
      resourceId: 'r',
      resourceVersion: 1,
      kind: 'LocalFileSet',
      stackFqdn: 'o/p/s',
      operation: 'up',
      status: 'running',
      credentialId: ids.azure,
    });
    // As the runner records a run's credential: on its live entry too (what the delete reads).
    await liveJobs(models).record(job.toObject());
    const refused = await call('DELETE', `/v1/credentials/${ids.azure}`);
    t.equal(refused.statusCode, 409);
    t.match(refused.json().message, new RegExp(`in use by running job ${job._id}`));
    await models.StackJob.updateOne({ _id: job._id }, { $set: { status: 'succeeded' } });
    t.equal((await call('DELETE', `/v1/credentials/${ids.azure}`)).statusCode, 200);
    t.equal((await call('GET', `/v1/credentials/${ids.azure}`)).statusCode, 404);
  });

  t.test('at rest, secrets exist only sealed: the stored documents hold none of the values', async (t) => {
    const docs = JSON.stringify(await models.Credential.find({}).lean<CredentialDoc[]>());
    for (const provider of PROVIDERS)
      for (const secret of samples[provider].secrets) t.notOk(docs.includes(secret), `${provider} secret not stored in clear`);
  });

  t.test("no secret value appears in any response or log line of the credentials' lives", async (t) => {
    t.ok(logs.length > 10, 'the API logged its requests');
    const everything = [...responses, ...logs].join('\n');
    for (const provider of PROVIDERS) {
      for (const secret of samples[provider].secrets) t.notOk(everything.includes(secret), `${provider}: a secret value leaked`);
    }
  });

  t.test('rotating CREDENTIALS_KEY: the re-seal command moves every credential to the new key, the old key can go', async (t) => {
    const newKey = Buffer.alloc(32, 9).toString('base64');
    const before = await models.Credential.find({}).lean<CredentialDoc[]>();
    const both = new Keyring(newKey, [CREDENTIALS_KEY]);
    const result = await resealCredentials(models, both);
    t.equal(result.resealed, before.length);
    t.equal((await resealCredentials(models, both)).resealed, 0, 'running it again changes nothing');
    const onlyNew = new Keyring(newKey);
    for (const doc of await models.Credential.find({}).lean<CredentialDoc[]>()) {
      t.equal(doc.sealed.keyId, onlyNew.active.id);
      const old = before.find((b) => b._id === doc._id)!;
      t.same(openSecrets(onlyNew, doc), openSecrets(new Keyring(CREDENTIALS_KEY), old), `${doc.name} opens to the same values`);
    }
    t.throws(
      () => openSecrets(new Keyring(CREDENTIALS_KEY), (before[0] && { ...before[0], sealed: { ...before[0].sealed, keyId: 'ffffffff' } })!),
      /sealed with key ffffffff/,
    );
  });

  t.test('a sealed value moved onto another credential does not open', async (t) => {
    const [a, b] = await models.Credential.find({}).limit(2).lean<CredentialDoc[]>();
    t.throws(() => openSecrets(new Keyring(Buffer.alloc(32, 9).toString('base64')), { _id: b!._id, sealed: a!.sealed }));
  });
});

t.test('without CREDENTIALS_KEY, credentials are refused with a 503 that says what to set', async (t) => {
  const { app } = await startApi(t, { config: { CREDENTIALS_KEY: undefined } });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: auth,
    payload: { name: 'x', provider: 'cloudflare', ...sampleCredentials().cloudflare.fields },
  });
  t.equal(res.statusCode, 503);
  t.match(res.json().message, /set CREDENTIALS_KEY/);
});
