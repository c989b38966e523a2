import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolPath } from '@pds/devkit';
import { execa } from 'execa';
import t from 'tap';
import { auth, manifest, startApi, TOKEN } from './harness.js';

t.test('the OpenAPI document describes every /v1 route with its responses, and /docs serves it to people', async (t) => {
  const { app } = await startApi(t);
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(res.statusCode, 200);
  const doc = res.json() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  t.match(doc.openapi, /^3\./);
  for (const path of [
    '/v1/resources',
    '/v1/resources/{id}',
    '/v1/resources/{id}/jobs',
    '/v1/jobs',
    '/v1/jobs/{id}',
    '/v1/jobs/{id}/cancel',
    '/v1/jobs/{id}/lines',
    '/v1/credentials',
    '/v1/credentials/{id}',
    '/v1/tokens',
    '/v1/tokens/{id}',
    '/v1/audit',
    '/v1/tenants',
    '/v1/tenants/{id}',
    '/v1/tenants/{id}/policy',
    '/v1/templates',
    '/v1/templates/{name}',
    '/v1/templates/{name}/schema',
    '/v1/templates/{name}/versions',
    '/v1/templates/{name}/versions/{version}',
    '/v1/templates/{name}/versions/{version}/publish',
    '/v1/resources/{id}/upgrade',
    '/v1/runtime',
    '/v1/resources/{id}/stack',
    '/v1/resources/{id}/outputs',
    '/v1/resources/{id}/stack/versions',
    '/v1/resources/{id}/stack/versions/{seq}',
    '/v1/resources/{id}/stack/diff',
    '/v1/resources/{id}/stack/export',
    '/v1/resources/{id}/stack/import',
    '/v1/webhooks',
    '/v1/webhooks/{id}',
    '/v1/webhooks/{id}/deliveries',
    '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver',
    '/v1/resources/{id}/drift-schedule',
    '/v1/jobs/{id}/approvals',
  ]) {
    t.ok(doc.paths[path], `${path} is documented`);
  }
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const codes = Object.keys(operation.responses);
      t.ok(
        codes.some((c) => c.startsWith('2')),
        `${method} ${path} documents its success`,
      );
      if (path.startsWith('/v1/')) t.ok(codes.includes('401') && codes.includes('403'), `${method} ${path} documents 401 and 403`);
    }
  }
  const html = await app.inject({ method: 'GET', url: '/docs' });
  t.ok([200, 302].includes(html.statusCode), 'the human docs answer');
});

t.test('schemathesis against the served document: no server errors, no response that breaks its schema', async (t) => {
  // No runner here: a publish that passes its static checks waits the shortest time for its smoke preview (then 503).
  const { app } = await startApi(t, { config: { PUBLISH_CHECK_TIMEOUT_SECONDS: 10 } });
  // Something to find, so GETs by id and job creation reach their success paths too.
  await app.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...auth, 'content-type': 'application/yaml' },
    payload: manifest('fuzz-target'),
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const reports = await mkdtemp(join(tmpdir(), 'pds-fuzz-'));
  t.teardown(() => rm(reports, { recursive: true, force: true }));
  const run = await execa(
    toolPath('st'),
    [
      'run',
      `${address}/docs/json`,
      '--url',
      address,
      '--header',
      `Authorization: Bearer ${TOKEN}`,
      '--checks',
      'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance',
      '--phases',
      'examples,coverage,fuzzing,stateful',
      '--max-examples',
      process.env.FUZZ_EXAMPLES ?? '40',
      '--seed',
      process.env.FUZZ_SEED ?? '20261123',
      '--report',
      'junit',
      '--report-junit-path',
      join(reports, 'junit.xml'),
      '--no-color',
    ],
    // In the report folder: schemathesis keeps a cache of its own in its working directory.
    { reject: false, cwd: reports, env: { SCHEMATHESIS_HOOKS: '' }, all: true },
  );
  const junit = await readFile(join(reports, 'junit.xml'), 'utf8').catch(() => '');
  const summary = run.all
    ?.split('\n')
    .filter((l) => /passed|failed|error|cases|Test cases/i.test(l))
    .slice(-12)
    .join('\n');
  t.comment(summary ?? '');
  t.equal(run.exitCode, 0, `schemathesis found problems:\n${run.all?.slice(-6000)}`);
  t.match(junit, /<testsuite/, 'a report was written');
  t.notMatch(junit, /<failure/, 'no failing operation in the report');
});
