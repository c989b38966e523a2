import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sampleCredentials } from '@pds/devkit';
import { createLogger, createRedis, redisReady } from '@pds/shared';
import t from 'tap';
import { readStream, startStack } from './harness.js';

const manifest = (name: string, labels = '') =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: GcpServiceAccountCheck\nmetadata:\n  name: ${name}\n${labels}spec: {}\n`;

t.test('a kind with a provider runs with its credential, delivered as the provider expects and masked everywhere', async (t) => {
  const logs: string[] = [];
  const responses: string[] = [];
  const stack = await startStack(t, {}, { logs: (line) => logs.push(line) });
  const api = async (method: 'GET' | 'POST', url: string, payload?: object | string) => {
    const res = await stack.api.inject({
      method,
      url,
      headers: { ...stack.auth, ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
      ...(payload ? { payload } : {}),
    });
    responses.push(res.body);
    return res;
  };
  // Everything published on Redis while the test runs.
  const published: string[] = [];
  const listener = createRedis(stack.config.REDIS_URL, 'subscriber', createLogger({ name: 'listener', level: 'silent' }));
  t.teardown(() => listener.quit().catch(() => listener.disconnect()));
  await redisReady(listener);
  listener.on('pmessage', (_pattern, _channel, message: string) => published.push(message));
  await listener.psubscribe('*');

  const runJob = async (resourceId: string) => {
    const job = (await api('POST', `/v1/resources/${resourceId}/jobs`, { operation: 'up' })).json();
    await readStream(`${stack.gatewayUrl}/v1/jobs/${job.id}/stream?from=0`);
    const done = (await api('GET', `/v1/jobs/${job.id}`)).json();
    const lines = (await api('GET', `/v1/jobs/${job.id}/lines?limit=10000`)).json().items as { text?: string }[];
    return { job: done, text: lines.map((l) => l.text ?? '').join('\n') };
  };

  const resource = (await api('POST', '/v1/resources', manifest('sa-check'))).json();

  t.test('with no credential for the provider, the job fails saying which provider and how to add one', async (t) => {
    const { job, text } = await runJob(resource.id);
    t.match(job, {
      status: 'failed',
      reason: 'credential_missing',
      result: { error: /tenant default has no default gcp credential .*; a tenant admin adds one with POST \/v1\/credentials/ },
    });
    t.match(text, /no default gcp credential/);
  });

  const main = sampleCredentials().gcp;
  const other = sampleCredentials().gcp;
  const mainKey = JSON.parse(main.fields.serviceAccountKey) as { private_key: string };
  const otherKey = JSON.parse(other.fields.serviceAccountKey) as { private_key: string };
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

  t.test('the default credential reaches the program as a 0600 key file, and the printed secret is masked', async (t) => {
    const created = await api('POST', '/v1/credentials', { name: 'gcp-prod', provider: 'gcp', ...main.fields });
    t.equal(created.statusCode, 201, created.body);
    const { job, text } = await runJob(resource.id);
    t.equal(job.status, 'succeeded', JSON.stringify(job.result));
    t.match(job.result.outputs, {
      keyFileMode: '600',
      privateKeySha256: sha256(mainKey.private_key),
      clientEmail: 'deployer@acme-prod.iam.gserviceaccount.com',
      project: 'acme-prod',
      settings: { projectId: 'acme-prod', clientEmail: 'deployer@acme-prod.iam.gserviceaccount.com' },
    });
    t.match(text, /using key \[secret\] for deployer@acme-prod/, 'the program printed the key id; the line shows it masked');
    const doc = await stack.models.StackJob.findById(job.id).lean();
    t.equal(doc?.credentialId, created.json().id, 'the job records the credential it ran with');
    t.notOk(existsSync(join(stack.config.WORK_DIR, 'secrets', job.id)), 'the key file is gone after the job');
  });

  t.test("a resource's label selects a credential other than the default", async (t) => {
    t.equal(
      (await api('POST', '/v1/credentials', { name: 'gcp-sandbox', provider: 'gcp', isDefault: false, ...other.fields })).statusCode,
      201,
    );
    const labelled = (
      await api('POST', '/v1/resources', manifest('sa-check-sandbox', '  labels:\n    deploy.pulumi.dev/credential: gcp-sandbox\n'))
    ).json();
    const { job } = await runJob(labelled.id);
    t.equal(job.status, 'succeeded', JSON.stringify(job.result));
    t.equal(job.result.outputs.privateKeySha256, sha256(otherKey.private_key));
  });

  t.test('no secret value is in any line, Redis message, log line, job document or response', async (t) => {
    const jobs = JSON.stringify(await stack.models.StackJob.find({}).lean());
    const everywhere = [...published, ...logs, ...responses, jobs].join('\n');
    t.ok(published.length > 10 && logs.length > 10, 'there was traffic to look at');
    for (const secret of [...main.secrets, ...other.secrets]) t.notOk(everywhere.includes(secret), 'a secret value leaked');
  });
});
