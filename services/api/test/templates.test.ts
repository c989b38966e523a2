import { Ajv } from 'ajv';
import t from 'tap';
import { manifest, startApi } from './harness.js';
import { caller, tenantsWithTokens } from './tenant-helpers.js';

t.test('templates: the catalogue, strict parameters, and the effective schema per tenant', async (t) => {
  const { app } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = caller(app, tokens.acme!.deployer);
  const beta = caller(app, tokens.beta!.viewer);
  await platform('PUT', '/v1/tenants/acme/policy', {
    templates: {
      LocalFileSet: {
        parameters: {
          'spec.files': { maxItems: 2 },
          'spec.directory': { pattern: '^/tmp/tenants/acme/' },
          'metadata.name': { maxLength: 20 },
        },
      },
    },
  });
  await platform('PUT', '/v1/tenants/beta/policy', { templatesByDefault: 'deny' });

  t.test('the catalogue lists the built-in templates, and whether the tenant may use each', async (t) => {
    const listed = (await acme('GET', '/v1/templates')).json().items as {
      name: string;
      source: string;
      version: string;
      allowed: boolean;
    }[];
    t.same(
      listed.map((x) => `${x.name} ${x.source} ${x.version} ${x.allowed}`),
      ['GcpServiceAccountCheck system 1.0.0 true', 'LocalFileSet system 1.1.0 true'],
    );
    t.same(
      ((await beta('GET', '/v1/templates')).json().items as { allowed: boolean }[]).map((x) => x.allowed),
      [false, false],
      'beta may use none',
    );
    t.equal((await platform('GET', '/v1/templates?tenant=beta')).json().items[0].allowed, false, 'a platform admin asks for a tenant');
    t.equal((await platform('GET', '/v1/templates')).json().items[0].allowed, undefined, 'or for none');
    t.match((await acme('GET', '/v1/templates/LocalFileSet')).json(), { name: 'LocalFileSet', provider: 'none', readme: /spec\.files/ });
    t.equal((await acme('GET', '/v1/templates/Nope')).statusCode, 404);
  });

  t.test('manifests are checked strictly against the template: no coercion, no unknown keys, every error named', async (t) => {
    const refused = async (spec: string) => {
      const res = await acme('POST', '/v1/resources', manifest('strict').replace(/spec:\n[\s\S]*$/, `spec:\n${spec}`));
      t.equal(res.statusCode, 400, res.body);
      return res.json().message as string;
    };
    t.match(
      await refused('  directory: /tmp/tenants/acme/s\n  files: []\n  colour: red\n'),
      'spec.colour is not a parameter of this template',
    );
    t.match(await refused('  files: []\n'), 'spec.directory is required');
    t.match(await refused('  directory: /tmp/tenants/acme/s\n  files: x\n'), 'spec.files must be array');
    t.match(
      await refused('  directory: /tmp/tenants/acme/s\n  files:\n    - { path: a, content: b, delayMs: "5" }\n'),
      'spec.files[0].delayMs must be integer',
    );
    const both = await refused('  directory: 5\n  files:\n    - { path: "", content: 1 }\n');
    t.match(both, /spec\.directory must be string/);
    t.match(both, /spec\.files\[0\]\.path must NOT have fewer than 1 characters/);
    t.match(both, /spec\.files\[0\]\.content must be string/, 'all of them at once');
    t.match(
      await refused('  directory: /tmp/tenants/acme/s\n  files: []\n  secret: "[secret]"\n'),
      'spec.secret: "[secret]" keeps a stored secret, and there is none; give the value',
    );
    const ok = await acme('POST', '/v1/resources', manifest('strict').replace('/tmp/strict', '/tmp/tenants/acme/strict'));
    t.equal(ok.statusCode, 201, ok.body);
  });

  t.test("the effective schema: the template's, narrowed by the tenant's limits, ready for a form", async (t) => {
    const schema = (await acme('GET', '/v1/templates/LocalFileSet/schema')).json();
    t.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    t.match(
      schema.properties.files,
      { type: 'array', maxItems: 2, 'x-tenant-limit': { tenant: 'acme', maxItems: 2 } },
      'the stricter of 1000 and 2',
    );
    t.match(
      schema.properties.directory,
      { type: 'string', maxLength: 4096, pattern: '^/tmp/tenants/acme/' },
      "the tenant's pattern joins the template's rules",
    );
    t.same(schema['x-tenant-limits'], { 'metadata.name': { maxLength: 20 } }, 'a limit outside spec is listed');
    const validate = new Ajv({ strict: false }).compile(schema);
    const spec = (files: number, directory = '/tmp/tenants/acme/x') => ({
      directory,
      files: Array.from({ length: files }, (_, i) => ({ path: `f${i}`, content: '' })),
    });
    t.ok(validate(spec(2)), 'a form value within the limits validates');
    t.notOk(validate(spec(3)), 'one past them does not');
    t.notOk(validate(spec(1, '/tmp/tenants/beta/x')));
    t.match(schema.properties.secret, { type: 'string', 'x-secret': true }, 'a form knows which field is secret');
    const plain = (await platform('GET', '/v1/templates/LocalFileSet/schema')).json();
    t.equal(plain.properties.files.maxItems, 1000, "a platform admin naming no tenant gets the template's own");
    t.equal((await beta('GET', '/v1/templates/LocalFileSet/schema?tenant=acme')).statusCode, 403, "not another tenant's");
  });
});
