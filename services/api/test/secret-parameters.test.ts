import { Keyring, openSecretParameters, resealSecretParameters, type ResourceDoc } from '@pds/shared';
import t from 'tap';
import { CREDENTIALS_KEY, manifest, startApi } from './harness.js';
import { caller } from './tenant-helpers.js';

const SECRET = 'hunter2-correct-horse';
const withSecret = (name: string, secretLine: string) => manifest(name).replace('spec:\n', `spec:\n${secretLine}\n`);

t.test("a secret parameter's value is kept only sealed, whatever form the manifest gives it", async (t) => {
  const { app, models } = await startApi(t);
  const platform = caller(app);
  const shows = async <R extends { statusCode: number; body: string }>(res: R) => {
    t.notMatch(res.body, SECRET, `the answer (${res.statusCode}) does not hold the value`);
    return res;
  };

  const plain = await shows(await platform('POST', '/v1/resources', withSecret('plain', `  secret: ${SECRET} # ${SECRET} in a comment`)));
  t.equal(plain.statusCode, 201, plain.body);
  t.equal(plain.json().spec.secret, '[secret]');
  const stored = await models.Resource.findById(plain.json().id).lean<ResourceDoc>();
  t.notMatch(JSON.stringify(stored), SECRET, 'the stored manifest is written anew: no comment, no value');
  t.same(openSecretParameters(new Keyring(CREDENTIALS_KEY), stored!._id, stored!.secretParameters), { secret: SECRET }, 'sealed, it opens');

  const merged = await shows(
    await platform('POST', '/v1/resources', `%YAML 1.1\n---\n${withSecret('merged', `  <<: { secret: ${SECRET} }`)}`),
  );
  t.equal(merged.statusCode, 400, 'a YAML directive (which turns on merge keys) is refused');
  const broken = await shows(await platform('POST', '/v1/resources', withSecret('broken', `  secret: ${SECRET}: oops`)));
  t.equal(broken.statusCode, 400);
  t.match(broken.json().message, /not valid YAML at line \d+, column \d+/, 'a YAML error says where, without quoting the line');
  const audit = await platform('GET', '/v1/audit?action=resource.create&limit=500');
  t.notMatch(audit.body, SECRET, 'the audit log keeps the messages, not the value');

  t.test('rotating CREDENTIALS_KEY re-seals secret parameters too', async (t) => {
    const next = Buffer.alloc(32, 9).toString('base64');
    const rotating = new Keyring(next, [CREDENTIALS_KEY]);
    // As a successful up leaves it: the run's sealed parameters kept as the stack's last good run.
    const before = await models.Resource.findById(plain.json().id).lean<ResourceDoc>();
    await models.Resource.updateOne(
      { _id: before!._id },
      { $set: { 'stack.lastGood': { manifest: before!.manifest, resourceVersion: 1, secretParameters: before!.secretParameters } } },
    );
    t.equal(await resealSecretParameters(models, rotating), 1);
    t.equal(await resealSecretParameters(models, rotating), 0, 'idempotent');
    const again = await models.Resource.findById(plain.json().id).lean<ResourceDoc>();
    t.same(
      openSecretParameters(new Keyring(next), again!._id, again!.secretParameters),
      { secret: SECRET },
      'opens with the new key alone',
    );
    t.same(
      openSecretParameters(new Keyring(next), again!._id, again!.stack?.lastGood?.secretParameters),
      { secret: SECRET },
      "the last good run's copy too (a compensation applies it again)",
    );
  });
});

t.test('without CREDENTIALS_KEY a template with a secret parameter still works when none is given', async (t) => {
  const { app } = await startApi(t, { config: { CREDENTIALS_KEY: undefined } });
  const platform = caller(app);
  t.equal((await platform('POST', '/v1/resources', manifest('no-secret'))).statusCode, 201);
  const refused = await platform('POST', '/v1/resources', withSecret('with-secret', `  secret: ${SECRET}`));
  t.equal(refused.statusCode, 503);
  t.match(refused.json().message, 'spec.secret is a secret parameter, and CREDENTIALS_KEY is not set');
});
