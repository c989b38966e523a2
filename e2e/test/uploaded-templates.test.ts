import { readFile, stat } from 'node:fs/promises';
import { stackBackend } from '@pds/runner';
import t from 'tap';
import { startStack, waitForJob, waitForResource } from './harness.js';

/** A TypeScript program: one dynamic-provider resource whose text comes from the parameters, and its outputs. */
const program = (version: string, extra = '') => `import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';

interface Spec {
  greeting: string;
  size: number;
  colour?: string;
}
const input = parse(process.env.STACK_INPUT_YAML ?? '') as { target: { spec: Spec } };
const spec: Spec = input.target.spec;
${extra}
const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { text: string }) {
    return { id: \`note-\${inputs.text.length}\`, outs: { text: inputs.text } };
  },
};

class Note extends pulumi.dynamic.Resource {
  declare readonly text: pulumi.Output<string>;
  constructor(name: string, text: string) {
    super(provider, name, { text }, {});
  }
}

const note = new Note('note', \`\${spec.greeting} x\${spec.size}\${spec.colour ? \` in \${spec.colour}\` : ''}\`);
export const text = note.text;
export const templateVersion = '${version}';
`;

const parameters = (extra: Record<string, unknown> = {}, required = ['greeting', 'size']) => ({
  type: 'object',
  additionalProperties: false,
  required,
  properties: {
    greeting: { type: 'string', maxLength: 100 },
    size: { type: 'integer', minimum: 1, maximum: 10 },
    ...extra,
  },
});

const manifest = (name: string, size: number) =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: Greeter\nmetadata:\n  name: ${name}\nspec:\n  greeting: hello\n  size: ${size}\n`;

/**
 * With the real CLI: a TypeScript template uploaded through the API, published after its checks
 * (a smoke preview on a throw-away stack among them), deployed by a tenant within its limits,
 * upgraded to a new minor version, refused for a tenant denied it, and refused at publish when
 * broken: schema, compile error, missing package, a breaking change without a new major version,
 * and a failing preview.
 */
t.test('an uploaded TypeScript template is checked, published, deployed, upgraded and governed', async (t) => {
  const stack = await startStack(t);
  const call = (method: 'POST' | 'PUT' | 'GET' | 'PATCH', url: string, payload?: object | string) =>
    stack.api.inject({
      method,
      url,
      headers: { ...stack.auth, ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
      ...(payload !== undefined ? { payload } : {}),
    });
  const ok = async (method: 'POST' | 'PUT' | 'GET' | 'PATCH', url: string, payload?: object | string) => {
    const res = await call(method, url, payload);
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  for (const name of ['acme', 'beta']) await ok('POST', '/v1/tenants', { name });
  await ok('PUT', '/v1/tenants/acme/policy', { templates: { Greeter: { parameters: { 'spec.size': { maximum: 4 } } } } });
  await ok('PUT', '/v1/tenants/beta/policy', { templates: { Greeter: { allowed: false } } });

  const runtime = await ok('GET', '/v1/runtime');
  t.same(
    runtime.packages.map((p: { name: string }) => p.name),
    ['@pulumi/pulumi', 'yaml'],
    'the runtime lists what programs may import',
  );

  // A platform template: every tenant sees it; each tenant's policy decides.
  t.equal((await ok('POST', '/v1/templates', { name: 'Greeter', description: 'Says hello' })).source, 'uploaded');
  const addVersion = (
    version: string,
    files: { path: string; content: string }[],
    params: object = parameters(),
    defaults: object = { greeting: 'hi', size: 1 },
  ) => call('POST', '/v1/templates/Greeter/versions', { version, files, parameters: params, defaults, readme: `v${version}` });
  const publish = (version: string) => call('POST', `/v1/templates/Greeter/versions/${version}/publish`);

  t.equal((await addVersion('1.0.0', [{ path: 'index.ts', content: program('1.0.0') }])).statusCode, 201);
  const started = Date.now();
  const published = await publish('1.0.0');
  const publishMs = Date.now() - started;
  t.equal(published.statusCode, 200, published.body);
  t.match(published.json(), { state: 'published', sha256: /^[0-9a-f]{64}$/ });
  t.comment(`publish of 1.0.0 (schema, defaults, TypeScript compile, smoke preview): ${publishMs} ms`);
  const check = await ok('GET', `/v1/jobs/${published.json().checkJobId}`);
  t.match(check, { status: 'succeeded', operation: 'preview' }, 'the smoke preview ran as a job');
  const checkState = stackBackend(stack.config.PULUMI_BACKEND_URL, check.stackFqdn).dir!;
  t.equal(await stat(checkState).catch(() => null), null, 'its throw-away stack is gone');
  t.equal(
    (await call('PUT', '/v1/templates/Greeter/versions/1.0.0', { files: [{ path: 'index.ts', content: '' }] })).statusCode,
    409,
    'a published version never changes',
  );

  // acme deploys within its limits.
  const tooBig = await call('POST', '/v1/resources?tenant=acme', manifest('big', 9));
  t.equal(tooBig.statusCode, 400);
  t.match(tooBig.json().message, /spec\.size must be <= 4 \(tenant acme's limit\)/);
  const resource = await ok('POST', '/v1/resources?tenant=acme', manifest('hello', 3));
  t.equal(resource.templateVersion, '1.0.0', 'a new resource pins the newest published version');
  const up = await ok('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'up' });
  const done = await waitForJob(stack.models, up.id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
  t.equal(done.status, 'succeeded', done.error ?? '');
  t.same(JSON.parse(done.outputs as string), { text: 'hello x3', templateVersion: '1.0.0' }, 'the program ran with the manifest');
  const state = await readFile(
    `${stackBackend(stack.config.PULUMI_BACKEND_URL, `acme/${resource.stackFqdn}`).dir}/.pulumi/stacks/Greeter/hello.json`,
    'utf8',
  );
  t.match(state, /pulumi-nodejs:dynamic:Resource::note/, 'the stack state holds the resource');

  // beta is denied the template.
  const denied = await call('POST', '/v1/resources?tenant=beta', manifest('hello', 3));
  t.equal(denied.statusCode, 409);
  t.match(denied.json().message, /template Greeter is not allowed for tenant beta/);

  // A new minor version, then the upgrade.
  const v11 = program('1.1.0');
  const v11Parameters = parameters({ colour: { type: 'string', enum: ['red', 'blue'] } });
  t.equal((await addVersion('1.1.0', [{ path: 'index.ts', content: v11 }], v11Parameters)).statusCode, 201);
  t.equal((await publish('1.1.0')).statusCode, 200);
  const upgraded = await ok('POST', `/v1/resources/${resource.id}/upgrade`, { version: '1.1.0' });
  t.match(upgraded, { templateVersion: '1.1.0', version: 2 });
  const up2 = await ok('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'up' });
  const done2 = await waitForJob(stack.models, up2.id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
  t.equal(done2.status, 'succeeded', done2.error ?? '');
  t.equal(JSON.parse(done2.outputs as string).templateVersion, '1.1.0', 'the upgraded version ran');
  await waitForResource(stack.models, resource.id, (r) => r.stack?.jobId === up2.id && r.stack?.status === 'deployed');
  t.equal((await ok('GET', `/v1/resources/${resource.id}`)).stack.templateVersion, '1.1.0');

  // Deprecated: no new resources, no upgrade back to it.
  await ok('PATCH', '/v1/templates/Greeter/versions/1.0.0', { state: 'deprecated' });
  t.equal((await call('POST', `/v1/resources/${resource.id}/upgrade`, { version: '1.0.0' })).statusCode, 409);

  // Broken versions are refused at publish, each naming what is wrong; they stay drafts.
  const refusals: [string, { path: string; content: string }[], object, RegExp][] = [
    [
      '1.2.0',
      [{ path: 'index.ts', content: v11 }],
      { ...parameters(), properties: { size: { type: 'integr' } } },
      /parameters: not a valid JSON Schema/,
    ],
    [
      '1.2.1',
      [{ path: 'index.ts', content: `${v11}\nconst wrong: number = 'five';\n` }],
      v11Parameters,
      /index\.ts:\d+:\d+: Type 'string' is not assignable to type 'number'/,
    ],
    [
      '1.2.2',
      [{ path: 'index.ts', content: `import pad from 'left-pad';\n${v11}` }],
      v11Parameters,
      /imports "left-pad": package left-pad is not provided by the runners/,
    ],
    [
      '1.2.3',
      [{ path: 'index.ts', content: v11 }],
      parameters({ colour: { type: 'string' } }, ['greeting', 'size', 'colour']),
      /spec\.colour is newly required since 1\.1\.0.*new major version/,
    ],
    [
      '1.2.4',
      [{ path: 'index.ts', content: program('1.2.4', "if (spec.size < 5) throw new Error('boom: the smoke preview fails');") }],
      v11Parameters,
      /smoke preview .* ended failed: .*boom: the smoke preview fails/s,
    ],
  ];
  for (const [version, files, params, expected] of refusals) {
    t.equal(
      (await addVersion(version, files, params, version === '1.2.3' ? { greeting: 'hi', size: 1, colour: 'red' } : undefined)).statusCode,
      201,
    );
    const refused = await publish(version);
    t.equal(refused.statusCode, 400, `${version} refused`);
    t.match(refused.json().message, expected);
    t.equal((await ok('GET', `/v1/templates/Greeter/versions/${version}`)).state, 'draft');
  }
  // The same change as a new major version is fine (up to the smoke preview).
  t.equal(
    (
      await addVersion(
        '2.0.0',
        [{ path: 'index.ts', content: v11 }],
        parameters({ colour: { type: 'string' } }, ['greeting', 'size', 'colour']),
        { greeting: 'hi', size: 1, colour: 'red' },
      )
    ).statusCode,
    201,
  );
  t.equal((await publish('2.0.0')).statusCode, 200);

  const audit = await ok('GET', '/v1/audit?limit=100');
  const actions = new Set(audit.items.map((e: { action: string }) => e.action));
  for (const action of [
    'template.create',
    'template.version.create',
    'template.version.publish',
    'template.version.state',
    'resource.upgrade',
  ]) {
    t.ok(actions.has(action), `${action} is audited`);
  }
});
