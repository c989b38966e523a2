import { testMongo } from '@pds/devkit/tap';
import { connectMongo, createModels, hashToken, jobStackKey, prepareStore, type ResourceDoc, tokenAuthenticator } from '@pds/shared';
import t from 'tap';

const LEGACY_TOKEN = `pds_${'L'.repeat(43)}`;
const stackFqdn = 'organization/local-file-set/web';
const manifest =
  'apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: web\nspec:\n  directory: /tmp/web\n  files: []\n';

/**
 * A store as the version without tenants wrote it: documents with no tenant, and unique indexes on
 * a resource's kind and name, its stack, and a credential's name (names unique service-wide).
 */
async function writeLegacyStore(db: NonNullable<Awaited<ReturnType<typeof connectMongo>>['db']>) {
  const now = new Date();
  await db.collection('resources').createIndex({ kind: 1, name: 1 }, { unique: true });
  await db.collection('resources').createIndex({ stackFqdn: 1 }, { unique: true });
  await db.collection('credentials').createIndex({ name: 1 }, { unique: true });
  await db.collection('resources').insertOne({
    _id: 'r-legacy' as never,
    kind: 'LocalFileSet',
    name: 'web',
    stackFqdn,
    labels: [],
    labelPairs: [],
    manifest,
    version: 3,
    createdAt: now,
    updatedAt: now,
  });
  await db.collection('stackjobs').insertOne({
    _id: 'j-legacy' as never,
    resourceId: 'r-legacy',
    resourceVersion: 3,
    kind: 'LocalFileSet',
    stackFqdn,
    operation: 'up',
    status: 'succeeded',
    options: {},
    createdAt: now,
    updatedAt: now,
  });
  await db.collection('credentials').insertOne({
    _id: 'c-legacy' as never,
    name: 'prod',
    provider: 'gcp',
    isDefault: true,
    labels: [],
    settings: {},
    fingerprint: 'sha256:0000000000000000',
    sealed: { keyId: 'k', iv: 'i', tag: 't', data: 'd' },
    createdAt: now,
    updatedAt: now,
  });
  await db.collection('apitokens').insertOne({
    _id: hashToken(LEGACY_TOKEN) as never,
    id: 'tok-legacy',
    name: 'ci',
    role: 'admin',
    prefix: LEGACY_TOKEN.slice(0, 10),
    createdBy: 'ADMIN_TOKEN',
    createdAt: now,
    updatedAt: now,
  });
  await db.collection('audit').insertOne({
    _id: 'a-legacy' as never,
    at: now,
    actor: { id: 'admin-token', name: 'ADMIN_TOKEN', role: 'admin' },
    action: 'resource.create',
    targetId: 'r-legacy',
    outcome: 'success',
    statusCode: 201,
  });
}

t.test('a store written by the version without tenants moves into the default tenant, once', async (t) => {
  const connection = await connectMongo(await testMongo(t));
  t.teardown(() => connection.close());
  const db = connection.db!;
  await writeLegacyStore(db);
  const models = createModels(connection);

  const first = await prepareStore(models);
  t.equal(first.migrated, true);
  t.same(first.moved, { resources: 1, jobs: 1, audit: 1, tokens: 1, credentials: 1, stacks: 1 }, 'every document without a tenant moved');
  t.match(
    await models.Resource.findById('r-legacy').lean(),
    { stack: { status: 'deployed', jobId: 'j-legacy', resourceVersion: 3 } },
    'its stack state follows from its last successful up',
  );
  t.same(first.droppedIndexes.sort(), ['Credential.name_1', 'Resource.kind_1_name_1', 'Resource.stackFqdn_1']);
  for (const collection of ['resources', 'stackjobs', 'credentials', 'apitokens', 'audit']) {
    t.equal(await db.collection(collection).countDocuments({ tenantId: { $ne: 'default' } }), 0, `${collection}: all in default`);
  }
  t.match(await models.Tenant.findById('default').lean(), { displayName: 'Default', migratedAt: Date });

  const second = await prepareStore(models);
  t.same({ ...second }, { migrated: false, moved: {}, droppedIndexes: [] }, 'the second start-up changes nothing');

  // What the old version wrote still works the same way.
  const auth = tokenAuthenticator(models, undefined);
  t.match(await auth.authenticate(LEGACY_TOKEN), { ok: true, principal: { id: 'tok-legacy', role: 'admin', tenant: 'default' } });
  const job = await models.StackJob.findById('j-legacy').lean<{ tenantId: string; stackFqdn: string }>();
  t.equal(jobStackKey(job!), stackFqdn, "the default tenant's stacks keep their key: the same lock and state folder as before");

  // The single-tenant indexes are gone: another tenant may use the same names; one tenant still may not.
  await models.Tenant.create({ _id: 'acme', displayName: 'Acme', createdBy: 'test' });
  const copy = { kind: 'LocalFileSet', name: 'web', stackFqdn, manifest, labels: [], labelPairs: [], version: 1 };
  await models.Resource.create({ ...copy, tenantId: 'acme' });
  await t.rejects(models.Resource.create({ ...copy, tenantId: 'default' }), { code: 11000 }, 'unique within a tenant');
  t.same((await models.Resource.find({ name: 'web' }).lean<ResourceDoc[]>()).map((r) => r.tenantId).sort(), ['acme', 'default']);
});
