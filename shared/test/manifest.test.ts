import t, { type Test } from 'tap';
import { AppError } from '../src/errors.js';
import { parseManifest, resolveStackFqdn, STACK_LABEL, stackInputYaml } from '../src/manifest.js';

const valid = `apiVersion: deploy.pulumi.dev/v1
kind: LocalFileSet
metadata:
  name: web-files
  labels:
    team: web
spec:
  directory: /srv/www
`;

function rejects(t: Test, text: string, field: RegExp) {
  try {
    parseManifest(text);
    t.fail(`accepted: ${text}`);
  } catch (err) {
    t.ok(err instanceof AppError, 'an AppError');
    t.equal((err as AppError).statusCode, 400);
    t.match((err as AppError).message, field);
  }
}

t.test('a valid manifest parses into its parts', async (t) => {
  const m = parseManifest(valid);
  t.equal(m.kind, 'LocalFileSet');
  t.equal(m.metadata.name, 'web-files');
  t.same(m.metadata.labels, { team: 'web' });
  t.same(m.spec, { directory: '/srv/www' });
});

t.test('each missing or malformed field is named in the error', async (t) => {
  rejects(t, 'a: [', /not valid YAML/);
  rejects(t, '- 1\n- 2', /must be a YAML mapping/);
  rejects(t, valid.replace('apiVersion: deploy.pulumi.dev/v1\n', ''), /^apiVersion/);
  rejects(t, valid.replace('kind: LocalFileSet\n', ''), /^kind/);
  rejects(t, valid.replace('name: web-files', 'name: Web_Files'), /^metadata\.name/);
  rejects(t, valid.replace('team: web', 'team: [1]'), /^metadata\.labels/);
  rejects(t, valid.replace('  directory: /srv/www\n', '').replace('spec:', 'spec: 3'), /^spec/);
});

t.test('the stack FQDN comes from the label, or from the project and name', async (t) => {
  t.equal(resolveStackFqdn(parseManifest(valid), 'local-file-set'), 'organization/local-file-set/web-files');
  const labelled = parseManifest(valid.replace('team: web', `"${STACK_LABEL}": acme/local-file-set/prod`));
  t.equal(resolveStackFqdn(labelled, 'local-file-set'), 'acme/local-file-set/prod');
  t.throws(() => resolveStackFqdn(labelled, 'other-project'), /project "local-file-set" must be "other-project"/);
  const malformed = parseManifest(valid.replace('team: web', `"${STACK_LABEL}": just-a-name`));
  t.throws(() => resolveStackFqdn(malformed, 'local-file-set'), /must look like org\/project\/stack/);
});

t.test('the program input carries the manifest as target', async (t) => {
  const yaml = stackInputYaml(parseManifest(valid), { region: 'eu' });
  t.match(yaml, /target:\n {2}apiVersion: deploy\.pulumi\.dev\/v1/);
  t.match(yaml, /settings:\n {2}region: eu/);
});

t.test('a manifest past the size cap is refused with 413, and YAML anchors and aliases with 400', async (t) => {
  const big = `${valid}\n# ${'x'.repeat(70 * 1024)}\n`;
  t.throws(() => parseManifest(big), { statusCode: 413, message: /at most 65536/ });
  t.ok(parseManifest(big, 1024 * 1024), 'a larger cap, when configured, accepts it');
  const laughs = `apiVersion: v1\nkind: LocalFileSet\nmetadata:\n  name: lol\nspec:\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n`;
  t.throws(() => parseManifest(laughs), { statusCode: 400, message: /anchors or aliases/ });
  t.throws(() => parseManifest(`${valid}\nextra: &x 1\n`), { statusCode: 400, message: /anchors or aliases/ }, 'an anchor alone too');
  t.throws(
    () => parseManifest(valid.replace('spec:', 'spec: {}\nspec:')),
    { statusCode: 400, message: /not valid YAML/ },
    'a duplicate key',
  );
});
