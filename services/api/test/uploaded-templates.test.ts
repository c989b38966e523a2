import t from 'tap';
import { breakingChanges, allowsBreaking } from '../src/templates/compatibility.js';
import { compileTemplate } from '../src/templates/compile.js';
import { sampleCredentials } from '@pds/devkit';
import { Keyring, resolveCredential } from '@pds/shared';
import { CREDENTIALS_KEY, startApi } from './harness.js';
import { caller, roleCallers, tenantsWithTokens } from './tenant-helpers.js';

const files = (content = 'exports.ok = 1;\n') => [{ path: 'index.js', content }];
const siteManifest = (name: string, spec = '{}') =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: Site\nmetadata:\n  name: ${name}\nspec: ${spec}\n`;

t.test('compiling a template program', async (t) => {
  const good = await compileTemplate(
    [
      {
        path: 'index.ts',
        content: `import * as pulumi from '@pulumi/pulumi';\nimport { parse } from 'yaml';\nimport { readFileSync } from 'node:fs';\nimport { twice } from './lib/twice';\nexport const n: number = twice(2);\nexport const cfg = new pulumi.Config().require('x') + String(parse('a: 1').a) + readFileSync.name;\n`,
      },
      { path: 'lib/twice.ts', content: 'export const twice = (n: number): number => n * 2;\n' },
    ],
    'index.ts',
  );
  t.ok(good.ok, JSON.stringify(good));
  if (good.ok)
    t.same(
      good.compiled.map((f) => f.path),
      ['index.js', 'lib/twice.js'],
      'CommonJS JavaScript per source file',
    );

  const typeError = await compileTemplate([{ path: 'src/main.ts', content: "\n\nconst n: number = 'x';\n" }], 'src/main.ts');
  t.match(
    typeError,
    { ok: false, problems: [/^src\/main\.ts:3:7: Type 'string' is not assignable to type 'number'/] },
    'file, line and column',
  );

  const foreign = await compileTemplate(
    [{ path: 'index.ts', content: "import x from 'lodash/fp';\nimport m = require('mongoose');\n" }],
    'index.ts',
  );
  t.match(foreign, {
    ok: false,
    problems: [/index\.ts:1: imports "lodash\/fp": package lodash is not provided/, /index\.ts:2: imports "mongoose"/],
  });

  // Files of the machine outside node_modules are not there for the compiler: their content would show in type errors.
  for (const path of ['/etc/hostname', '../../../../../../etc/passwd', '../package.json', '../../package.json']) {
    const escaping = await compileTemplate(
      [{ path: 'index.ts', content: `import data from '${path}';\nexport const n: number = data;\n` }],
      'index.ts',
    );
    t.match(escaping, { ok: false, problems: [/Cannot find module/] }, `${path} is not read`);
  }
  t.match(await compileTemplate(files(), 'main.js'), { ok: false, problems: ['main: main.js is not one of the files'] });
});

t.test("a tenant's uploaded template gets the tenant's own credentials only", async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  await tenantsWithTokens(app, ['acme']);
  const gcp = sampleCredentials().gcp.fields;
  t.equal(
    (await platform('POST', '/v1/credentials', { name: 'org-wide', provider: 'gcp', isDefault: true, sharedWith: ['acme'], ...gcp }))
      .statusCode,
    201,
  );
  const keyring = Keyring.fromConfig({ CREDENTIALS_KEY } as never);
  const resource = { tenantId: 'acme', labels: [] };
  t.equal(
    (await resolveCredential(models, keyring, 'gcp', resource)).name,
    'org-wide',
    'a built-in or platform template gets the shared one',
  );
  await t.rejects(
    resolveCredential(models, keyring, 'gcp', resource, { shared: false }),
    /tenant acme has no default gcp credential \(of its own; a tenant's uploaded template does not get the platform's shared credentials\)/,
  );
});

t.test('what needs a new major version', async (t) => {
  const before = {
    type: 'object',
    additionalProperties: false,
    required: ['size'],
    properties: { size: { type: 'integer' }, tier: { enum: ['a', 'b'] }, tags: { type: 'array', items: { enum: ['x', 'y'] } } },
  };
  t.same(breakingChanges(before, before), []);
  t.same(
    breakingChanges(before, { ...before, properties: { ...before.properties, note: { type: 'string' } } }),
    [],
    'a new optional parameter',
  );
  t.same(
    breakingChanges(before, {
      ...before,
      required: ['size', 'tier'],
      properties: { size: { type: 'integer' }, tier: { enum: ['a'] }, tags: { type: 'array', items: { enum: ['x'] } } },
    }),
    ['spec.tier is newly required', `spec.tier's enum no longer allows "b"`, `spec.tags[]'s enum no longer allows "y"`],
  );
  t.same(breakingChanges(before, { ...before, properties: { size: { type: 'integer' } } }), [
    'spec.tier was removed',
    'spec.tags was removed',
  ]);
  const sized = { type: 'object', properties: { size: { type: 'integer', maximum: 10 } } };
  t.same(breakingChanges(sized, { ...sized, properties: { size: { type: 'integer', maximum: 20 } } }), [], 'a larger maximum accepts more');
  t.same(breakingChanges(sized, { ...sized, properties: { size: { type: 'integer', maximum: 4 } } }), [
    `spec.size's maximum went from 10 to 4`,
  ]);
  t.same(breakingChanges(sized, { ...sized, properties: { size: { type: 'string', maximum: 10 } } }), [
    `spec.size's type changed ("integer" → "string")`,
  ]);
  t.same(breakingChanges(sized, { ...sized, additionalProperties: false }), ['spec no longer takes other properties']);
  t.match(
    breakingChanges(sized, { ...sized, allOf: [{ required: ['size'] }] }),
    [/spec's allOf changed/],
    'rules it does not read count as breaking',
  );
  t.ok(allowsBreaking('1.4.2', '2.0.0'));
  t.notOk(allowsBreaking('1.4.2', '1.5.0'));
  t.ok(allowsBreaking('0.3.0', '0.4.0'), 'below 1.0, a minor version may break');
  t.notOk(allowsBreaking('0.3.0', '0.3.1'));
});

t.test('uploaded templates: who sees and changes them, drafts, states, pins and upgrades', async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = roleCallers(app, tokens.acme!);
  const beta = roleCallers(app, tokens.beta!);
  /** Marks a version published through the store (publishing runs a smoke preview on a runner: e2e/test/uploaded-templates.test.ts). */
  const markPublished = (name: string, version: string) =>
    models.TemplateVersion.updateOne({ name, version }, { $set: { state: 'published', sha256: 'a'.repeat(64) } });

  t.equal((await acme.deployer('POST', '/v1/templates', { name: 'Site' })).statusCode, 403, 'a deployer does not add templates');
  const created = await acme.admin('POST', '/v1/templates', { name: 'Site', description: 'a site' });
  t.equal(created.statusCode, 201, created.body);
  t.match(created.json(), { name: 'Site', source: 'uploaded', owner: 'acme', version: '' });
  t.equal((await acme.admin('POST', '/v1/templates', { name: 'LocalFileSet' })).statusCode, 409, 'built-in names are taken');
  t.equal((await acme.admin('POST', '/v1/templates', { name: 'Site' })).statusCode, 409);
  t.equal((await acme.admin('POST', '/v1/templates', { name: 'Other', tenant: 'beta' })).statusCode, 403, 'not in another tenant');
  t.equal((await acme.admin('POST', '/v1/templates', { name: 'Other', provider: 'ibm' })).statusCode, 400);
  t.equal((await platform('POST', '/v1/templates', { name: 'Site' })).statusCode, 409, "a platform template may not hide a tenant's");
  t.equal((await platform('POST', '/v1/templates', { name: 'Shared' })).statusCode, 201);
  t.equal((await acme.admin('POST', '/v1/templates', { name: 'Shared' })).statusCode, 409, "nor a tenant's the platform's");

  // Visibility: acme sees its own and the platform's; beta only the platform's; another tenant's answers 404.
  const names = async (call: ReturnType<typeof caller>) =>
    ((await call('GET', '/v1/templates')).json().items as { name: string; source: string }[])
      .filter((x) => x.source === 'uploaded')
      .map((x) => x.name);
  t.same(await names(acme.viewer), ['Shared', 'Site']);
  t.same(await names(beta.viewer), ['Shared']);
  t.equal((await beta.admin('GET', '/v1/templates/Site')).statusCode, 404);
  t.equal((await beta.admin('POST', '/v1/templates/Site/versions', { version: '1.0.0', files: files() })).statusCode, 404);
  t.equal(
    (await acme.admin('POST', '/v1/templates/Shared/versions', { version: '1.0.0', files: files() })).statusCode,
    403,
    "platform templates are the platform admins'",
  );

  // Drafts change; bad content is refused naming the field.
  const bad = [
    [{ version: '1.0', files: files() }, 400, /version/],
    [{ version: '1.0.0', files: [{ path: '../x.js', content: '' }] }, 400, /files\[0\]\.path/],
    [{ version: '1.0.0', files: [{ path: 'node_modules/x.js', content: '' }] }, 400, /node_modules/],
    [
      {
        version: '1.0.0',
        files: [
          { path: 'a.js', content: '' },
          { path: 'a.js', content: '' },
        ],
      },
      400,
      /appears twice/,
    ],
    [{ version: '1.0.0', files: [{ path: 'a.js', content: '' }] }, 400, /main: index\.js must be one of/],
    [
      {
        version: '1.0.0',
        files: [
          { path: 'a.js', content: 'x'.repeat(600_000) },
          { path: 'b.js', content: 'x'.repeat(600_000) },
        ],
        main: 'a.js',
      },
      413,
      /bytes in all/,
    ],
  ] as const;
  for (const [body, status, message] of bad) {
    const res = await acme.admin('POST', '/v1/templates/Site/versions', body);
    t.equal(res.statusCode, status, res.body);
    t.match(res.json().message, message);
  }
  t.equal((await acme.admin('POST', '/v1/templates/Site/versions', { version: '1.0.0', files: files() })).statusCode, 201);
  t.equal((await acme.admin('POST', '/v1/templates/Site/versions', { version: '1.0.0', files: files() })).statusCode, 409);
  const edited = await acme.admin('PUT', '/v1/templates/Site/versions/1.0.0', { files: files('exports.v = 2;\n'), readme: 'v2' });
  t.match(edited.json(), { state: 'draft', readme: 'v2', files: [{ content: 'exports.v = 2;\n' }] });
  t.equal((await acme.viewer('GET', '/v1/templates/Site/versions/1.0.0')).json().files[0].content, 'exports.v = 2;\n');
  t.equal((await acme.viewer('PUT', '/v1/templates/Site/versions/1.0.0', { files: files() })).statusCode, 403);

  // Until a version is published, nothing can be created from the template.
  const early = await acme.deployer('POST', '/v1/resources', siteManifest('early'));
  t.equal(early.statusCode, 400);
  t.match(early.json().message, /template Site has no published version/);

  // Publish checks that need no runner, each naming what is wrong.
  const publishRefusals: [string, object, RegExp][] = [
    ['0.1.0', { parameters: { type: 'object', properties: { n: { type: 'nope' } } } }, /parameters: not a valid JSON Schema/],
    [
      '0.1.1',
      { parameters: { type: 'object', properties: { n: { type: 'integer' } } }, defaults: { n: 'x' } },
      /defaults do not validate against parameters: spec\.n must be integer/,
    ],
    [
      '0.1.2',
      { parameters: { type: 'object', properties: { pw: { type: 'string', 'x-secret': true } } }, defaults: { pw: 'hunter2' } },
      /spec\.pw is a secret parameter and takes no default/,
    ],
    ['0.1.3', { files: files('const x = ;\n') }, /the program does not compile:\nindex\.js:1:/],
  ];
  for (const [version, content, message] of publishRefusals) {
    t.equal((await acme.admin('POST', '/v1/templates/Site/versions', { version, files: files(), ...content })).statusCode, 201);
    const res = await acme.admin('POST', `/v1/templates/Site/versions/${version}/publish`, {});
    t.equal(res.statusCode, 400, res.body);
    t.match(res.json().message, message);
  }

  await markPublished('Site', '1.0.0');
  t.equal((await acme.admin('PUT', '/v1/templates/Site/versions/1.0.0', { files: files() })).statusCode, 409, 'published: immutable');
  t.equal((await acme.admin('POST', '/v1/templates/Site/versions/1.0.0/publish', {})).statusCode, 409, 'published once');
  const resource = await acme.deployer('POST', '/v1/resources', siteManifest('web'));
  t.equal(resource.statusCode, 201, resource.body);
  t.match(resource.json(), { kind: 'Site', templateVersion: '1.0.0', stackFqdn: 'organization/Site/web' });
  t.equal((await beta.deployer('POST', '/v1/resources', siteManifest('web'))).statusCode, 400, "beta cannot use acme's template");

  // A second version, with a parameter; the pin holds until an upgrade.
  const v11 = {
    version: '1.1.0',
    files: files(),
    parameters: { type: 'object', additionalProperties: false, properties: { size: { type: 'integer', maximum: 3 } } },
  };
  t.equal((await acme.admin('POST', '/v1/templates/Site/versions', v11)).statusCode, 201);
  t.equal(
    (await acme.deployer('POST', `/v1/resources/${resource.json().id}/upgrade`, { version: '1.1.0' })).statusCode,
    400,
    'not to a draft',
  );
  await markPublished('Site', '1.1.0');
  const listed = (await acme.viewer('GET', '/v1/templates/Site/versions'))
    .json()
    .items.map((v: { version: string; state: string }) => `${v.version} ${v.state}`);
  t.same(listed, ['1.1.0 published', '1.0.0 published', '0.1.3 draft', '0.1.2 draft', '0.1.1 draft', '0.1.0 draft'], 'newest first');
  t.equal((await acme.viewer('GET', '/v1/templates/Site')).json().version, '1.1.0');
  t.match((await acme.viewer('GET', '/v1/templates/Site/schema')).json(), { properties: { size: { maximum: 3 } } });
  t.equal((await acme.viewer('GET', `/v1/resources/${resource.json().id}`)).json().templateVersion, '1.0.0', 'still pinned');
  const upgrade = (version: string, call = acme.deployer) => call('POST', `/v1/resources/${resource.json().id}/upgrade`, { version });
  t.equal((await upgrade('1.1.0', acme.viewer)).statusCode, 403);
  t.equal((await upgrade('1.1.0', beta.admin)).statusCode, 404);
  t.equal((await upgrade('9.9.9')).statusCode, 400);
  const up = await upgrade('1.1.0');
  t.equal(up.statusCode, 200, up.body);
  t.match(up.json(), { templateVersion: '1.1.0', version: 2 });
  t.equal((await upgrade('1.1.0')).statusCode, 409, 'already there');
  // A manifest that the new version refuses stays on its version.
  const big = await acme.deployer('POST', '/v1/resources', siteManifest('big', '{ size: 9 }'));
  t.equal(big.statusCode, 400);
  t.match(big.json().message, /spec\.size must be <= 3/);
  t.equal(
    (await acme.deployer('PUT', `/v1/resources/${resource.json().id}`, siteManifest('web', '{ size: 9 }'))).statusCode,
    400,
    'checked against its pinned version',
  );

  // States: deprecated versions take no new resources nor upgrades; archived ones come back only through deprecated.
  t.equal((await acme.admin('PATCH', '/v1/templates/Site/versions/1.1.0', { state: 'archived' })).statusCode, 409);
  t.equal((await acme.admin('PATCH', '/v1/templates/Site/versions/1.0.0', { state: 'deprecated' })).json().state, 'deprecated');
  t.equal((await upgrade('1.0.0')).statusCode, 409, 'not to a deprecated version');
  t.equal((await acme.admin('PATCH', '/v1/templates/Site/versions/1.1.0', { state: 'deprecated' })).statusCode, 200);
  const none = await acme.deployer('POST', '/v1/resources', siteManifest('late'));
  t.equal(none.statusCode, 400, 'every version deprecated: no new resources');
  t.equal(
    (await acme.deployer('POST', `/v1/resources/${resource.json().id}/jobs`, { operation: 'preview' })).statusCode,
    202,
    'existing resources still run',
  );
  t.equal((await acme.admin('PATCH', '/v1/templates/Site/versions/1.1.0', { state: 'published' })).statusCode, 200);

  // A tenant's version range picks among published versions for new resources.
  await platform('PUT', '/v1/tenants/acme/policy', { templates: { Site: { versions: '~1.0.0' } } });
  await acme.admin('PATCH', '/v1/templates/Site/versions/1.0.0', { state: 'published' });
  t.equal((await acme.deployer('POST', '/v1/resources', siteManifest('ranged'))).json().templateVersion, '1.0.0');
  const outside = await acme.deployer('POST', `/v1/resources/${resource.json().id}/jobs`, { operation: 'up' });
  t.equal(outside.statusCode, 409, 'a pinned version outside the range is not deployed');
  t.match(outside.json().message, /Site 1\.1\.0 is outside the versions tenant acme may use/);

  // A new major version with a new required parameter: the upgrade takes the manifest it needs.
  const v2 = {
    version: '2.0.0',
    files: files(),
    parameters: { type: 'object', additionalProperties: false, required: ['size'], properties: { size: { type: 'integer' } } },
    defaults: { size: 1 },
  };
  t.equal((await acme.admin('POST', '/v1/templates/Site/versions', v2)).statusCode, 201);
  await markPublished('Site', '2.0.0');
  await platform('PUT', '/v1/tenants/acme/policy', {});
  const plain = await acme.deployer('POST', `/v1/resources/${resource.json().id}/upgrade`, { version: '2.0.0' });
  t.equal(plain.statusCode, 400, 'the stored manifest lacks what 2.0.0 requires');
  t.match(plain.json().message, /spec\.size is required/);
  const withManifest = await acme.deployer('POST', `/v1/resources/${resource.json().id}/upgrade`, {
    version: '2.0.0',
    manifest: siteManifest('web', '{ size: 2 }'),
  });
  t.equal(withManifest.statusCode, 200, withManifest.body);
  t.match(withManifest.json(), { templateVersion: '2.0.0', spec: { size: 2 } });
  t.equal(
    (await acme.deployer('POST', `/v1/resources/${resource.json().id}/upgrade`, { version: '1.1.0', manifest: siteManifest('other') }))
      .statusCode,
    400,
    'the name stays',
  );

  // Drafts are their owner's: a tenant sees a platform template's released versions only.
  await platform('POST', '/v1/templates/Shared/versions', { version: '0.1.0', files: files('exports.secretSauce = 1;\n') });
  t.same((await acme.viewer('GET', '/v1/templates/Shared/versions')).json().items, []);
  t.equal((await acme.admin('GET', '/v1/templates/Shared/versions/0.1.0')).statusCode, 404);
  t.equal((await platform('GET', '/v1/templates/Shared/versions/0.1.0')).statusCode, 200);

  // Versions without build metadata; patterns that could backtrack for ever are refused at publish.
  t.equal((await acme.admin('POST', '/v1/templates/Site/versions', { version: '2.1.0+build.1', files: files() })).statusCode, 400);
  const risky = { type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } };
  t.equal(
    (await acme.admin('POST', '/v1/templates/Site/versions', { version: '3.0.0', files: files(), parameters: risky })).statusCode,
    201,
  );
  const refusedPattern = await acme.admin('POST', '/v1/templates/Site/versions/3.0.0/publish', {});
  t.equal(refusedPattern.statusCode, 400);
  t.match(refusedPattern.json().message, /parameters\.properties\.name\.pattern: a quantified group holds a quantifier/);

  // Another tenant's schema cannot be reached by $ref: each schema compiles on its own.
  const refd = { type: 'object', properties: { x: { $ref: 'acme-schema#/definitions/secret' } } };
  t.equal(
    (await acme.admin('POST', '/v1/templates/Site/versions', { version: '3.0.1', files: files(), parameters: refd })).statusCode,
    201,
  );
  t.match(
    (await acme.admin('POST', '/v1/templates/Site/versions/3.0.1/publish', {})).json().message,
    /parameters: not a valid JSON Schema/,
  );

  const audit = (await platform('GET', '/v1/audit?tenant=acme&limit=200')).json().items as { action: string; outcome: string }[];
  const done = new Set(audit.filter((e) => e.outcome === 'success').map((e) => e.action));
  for (const action of [
    'template.create',
    'template.version.create',
    'template.version.update',
    'template.version.state',
    'resource.upgrade',
  ]) {
    t.ok(done.has(action), `${action} is in acme's audit log`);
  }
  t.ok(
    audit.some((e) => e.action === 'template.version.publish' && e.outcome === 'failure'),
    'refused publishes too',
  );
});
