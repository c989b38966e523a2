import { sampleCredentials } from '@pds/devkit';
import { CREDENTIAL_LABEL } from '@pds/shared';
import t from 'tap';
import { manifest, startApi } from './harness.js';
import { caller, roleCallers, tenantManifest, tenantsWithTokens } from './tenant-helpers.js';

t.test('tenants', async (t) => {
  const { app, waiting } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = roleCallers(app, tokens.acme!);
  const beta = roleCallers(app, tokens.beta!);

  t.test('platform admins create and change tenants; a tenant sees only itself', async (t) => {
    t.equal((await platform('POST', '/v1/tenants', { name: 'acme' })).statusCode, 409, 'a name is taken once');
    const bad = await platform('POST', '/v1/tenants', { name: 'Not_A_Name' });
    t.equal(bad.statusCode, 400);
    t.match(bad.json().message, /name/);
    t.equal((await acme.admin('POST', '/v1/tenants', { name: 'sneaky' })).statusCode, 403, 'a tenant admin is not a platform admin');
    t.same(
      (await platform('GET', '/v1/tenants')).json().items.map((x: { name: string }) => x.name),
      ['acme', 'beta', 'default'],
      'the platform sees every tenant, the default one included',
    );
    t.same(
      (await acme.viewer('GET', '/v1/tenants')).json().items.map((x: { name: string }) => x.name),
      ['acme'],
    );
    t.equal((await acme.viewer('GET', '/v1/tenants/acme')).json().displayName, 'ACME');
    t.equal((await acme.viewer('GET', '/v1/tenants/beta')).statusCode, 404, "another tenant's name answers as unknown");
    t.equal((await acme.admin('PATCH', '/v1/tenants/acme', { displayName: 'x' })).statusCode, 403);
    const patched = await platform('PATCH', '/v1/tenants/acme', { displayName: 'Acme Corp' });
    t.equal(patched.json().displayName, 'Acme Corp');
    t.equal((await platform('PATCH', '/v1/tenants/nobody', { displayName: 'x' })).statusCode, 404);
  });

  t.test('two tenants keep resources of the same name and stack side by side, each seeing only its own', async (t) => {
    const a = await acme.deployer('POST', '/v1/resources', tenantManifest('acme', 'web'));
    const b = await beta.deployer('POST', '/v1/resources', tenantManifest('beta', 'web'));
    t.equal(a.statusCode, 201, a.body);
    t.equal(b.statusCode, 201, b.body);
    t.equal(a.json().stackFqdn, b.json().stackFqdn, 'one stack FQDN in both tenants');
    t.equal(a.json().tenant, 'acme');
    t.equal(b.json().tenant, 'beta');
    t.equal(
      (await acme.deployer('POST', '/v1/resources', tenantManifest('acme', 'web').replace('acme/web', 'acme/web2'))).statusCode,
      409,
      'but twice in one tenant is refused',
    );
    const aId = a.json().id as string;
    t.equal((await beta.viewer('GET', `/v1/resources/${aId}`)).statusCode, 404, "another tenant's resource is unknown");
    t.equal((await beta.admin('PUT', `/v1/resources/${aId}`, manifest('web'))).statusCode, 404);
    t.equal((await beta.admin('DELETE', `/v1/resources/${aId}?force=true`)).statusCode, 404);
    t.equal((await beta.admin('POST', `/v1/resources/${aId}/jobs`, { operation: 'preview' })).statusCode, 404);
    t.equal((await acme.viewer('GET', `/v1/resources/${aId}`)).statusCode, 200);
    const listed = (await beta.viewer('GET', '/v1/resources')).json().items.map((r: { tenant: string }) => r.tenant);
    t.same(listed, ['beta'], 'a list holds only its own tenant');
    t.same((await beta.viewer('GET', '/v1/resources?tenant=acme')).json().items, [], 'asking for another tenant gives nothing');
    t.equal((await beta.deployer('POST', '/v1/resources?tenant=acme', manifest('x'))).statusCode, 403, 'nor may it create there');
    t.same(
      (await platform('GET', '/v1/resources?namePrefix=web'))
        .json()
        .items.map((r: { tenant: string }) => r.tenant)
        .sort(),
      ['acme', 'beta'],
    );
    t.same(
      (await platform('GET', '/v1/resources?tenant=acme')).json().items.map((r: { id: string }) => r.id),
      [aId],
    );
    const viaPlatform = await platform('POST', '/v1/resources?tenant=beta', tenantManifest('beta', 'from-platform'));
    t.equal(viaPlatform.json().tenant, 'beta', 'a platform admin creates in the tenant it names');
    t.equal((await platform('POST', '/v1/resources?tenant=nobody', manifest('lost'))).statusCode, 404);

    // Jobs: each tenant's stack has its own key (lock, line, state); another tenant's job is unknown.
    // The default tenant has a stack of the same FQDN with a job ahead in its line: not acme's line.
    const inDefault = await platform('POST', '/v1/resources', manifest('web').replace('/tmp/web', '/tmp/web-default'));
    const defaultJob = (await platform('POST', `/v1/resources/${inDefault.json().id}/jobs`, { operation: 'preview' })).json();
    const jobA = (await acme.deployer('POST', `/v1/resources/${aId}/jobs`, { operation: 'preview' })).json();
    const seen = (await acme.viewer('GET', `/v1/jobs/${jobA.id}`)).json();
    t.equal(seen.position, 0, "first in its own stack's line");
    t.not(seen.blockedBy, defaultJob.id, "another tenant's job on the same FQDN never shows");
    const jobB = (await beta.deployer('POST', `/v1/resources/${b.json().id}/jobs`, { operation: 'preview' })).json();
    t.equal(jobA.tenant, 'acme');
    const dataA = (await waiting.entry(jobA.id))?.data as { stackKey: string };
    const dataB = (await waiting.entry(jobB.id))?.data as { stackKey: string };
    t.equal(dataA.stackKey, `acme/${a.json().stackFqdn}`);
    t.equal(dataB.stackKey, `beta/${a.json().stackFqdn}`, 'one FQDN, two stacks');
    for (const path of [`/v1/jobs/${jobA.id}`, `/v1/jobs/${jobA.id}/lines`]) {
      t.equal((await beta.viewer('GET', path)).statusCode, 404, `GET ${path} from another tenant`);
      t.equal((await acme.viewer('GET', path)).statusCode, 200, `GET ${path} from its own`);
    }
    t.equal((await beta.deployer('POST', `/v1/jobs/${jobA.id}/cancel`)).statusCode, 404);
    t.equal((await beta.viewer('POST', '/v1/stream-tickets', { jobId: jobA.id })).statusCode, 404, 'no ticket for it either');
    t.equal((await acme.viewer('POST', '/v1/stream-tickets', { jobId: jobA.id })).statusCode, 201);
    t.same(
      (await beta.viewer('GET', '/v1/jobs')).json().items.map((j: { id: string }) => j.id),
      [jobB.id],
    );
    t.same((await beta.viewer('GET', `/v1/jobs?resourceId=${aId}`)).json().items, []);
  });

  t.test("each tenant's local folders are in its own area; the default tenant stays out of theirs", async (t) => {
    const outside = await acme.deployer('POST', '/v1/resources', manifest('loose'));
    t.equal(outside.statusCode, 400);
    t.match(outside.json().message, 'spec.directory must be inside /tmp/tenants/acme (LOCAL_FILES_ROOT)');
    const intoBeta = await acme.deployer('POST', '/v1/resources', tenantManifest('beta', 'squat'));
    t.equal(intoBeta.statusCode, 400, "not even in another tenant's area");
    const byDefault = await platform('POST', '/v1/resources', tenantManifest('acme', 'squat'));
    t.equal(byDefault.statusCode, 400, "the default tenant's root holds the others' areas, which it may not use");
    t.match(byDefault.json().message, '/tmp/tenants holds the folders of the other tenants');
    t.equal((await platform('POST', '/v1/resources?tenant=acme', tenantManifest('acme', 'squat'))).statusCode, 201);
  });

  t.test('credentials: a tenant has its own; a platform credential is shared with named tenants, read-only to them', async (t) => {
    const gcp = sampleCredentials().gcp.fields;
    const own = await acme.admin('POST', '/v1/credentials', { name: 'prod', provider: 'gcp', ...gcp });
    t.equal(own.statusCode, 201, own.body);
    t.equal(own.json().tenant, 'acme');
    t.equal(
      (await beta.admin('POST', '/v1/credentials', { name: 'prod', provider: 'gcp', ...gcp })).statusCode,
      201,
      'names are per tenant',
    );
    t.equal((await acme.admin('POST', '/v1/credentials', { name: 'prod', provider: 'gcp', ...gcp })).statusCode, 409);
    t.equal(
      (await acme.admin('POST', '/v1/credentials', { name: 'x', provider: 'gcp', sharedWith: ['acme'], ...gcp })).statusCode,
      403,
      'only platform admins share',
    );
    t.equal((await acme.deployer('GET', '/v1/credentials')).statusCode, 403, 'credentials are for admins');
    const shared = await platform('POST', '/v1/credentials', { name: 'org-wide', provider: 'gcp', sharedWith: ['acme'], ...gcp });
    t.equal(shared.statusCode, 201, shared.body);
    t.match(shared.json(), { platform: true, sharedWith: ['acme'] });
    t.equal(
      (await platform('POST', '/v1/credentials', { name: 'y', provider: 'gcp', sharedWith: ['nobody'], ...gcp })).statusCode,
      400,
      'shared only with tenants that exist',
    );
    const sharedId = shared.json().id as string;
    t.equal((await acme.admin('GET', `/v1/credentials/${sharedId}`)).statusCode, 200, 'acme sees what is shared with it');
    t.equal((await acme.admin('PUT', `/v1/credentials/${sharedId}`, gcp)).statusCode, 403, 'but cannot change it');
    t.equal((await acme.admin('DELETE', `/v1/credentials/${sharedId}`)).statusCode, 403);
    t.equal((await beta.admin('GET', `/v1/credentials/${sharedId}`)).statusCode, 404, 'beta does not see it');
    t.equal((await beta.admin('GET', `/v1/credentials/${own.json().id}`)).statusCode, 404);
    t.equal((await beta.admin('DELETE', `/v1/credentials/${own.json().id}`)).statusCode, 404);
    const names = async (call: typeof platform, query = '') => {
      const all: string[] = [];
      let cursor: string | undefined;
      // One item per page: the visibility filter must hold on every page, not only the first.
      do {
        const page = (await call('GET', `/v1/credentials?limit=1${cursor ? `&cursor=${cursor}` : ''}${query}`)).json();
        all.push(...page.items.map((c: { name: string; tenant?: string }) => `${c.tenant ?? 'platform'}:${c.name}`));
        cursor = page.nextCursor;
      } while (cursor);
      return all.sort();
    };
    t.same(await names(acme.admin), ['acme:prod', 'platform:org-wide']);
    t.same(await names(beta.admin), ['beta:prod']);
    t.same(await names(platform, '&tenant=acme'), ['acme:prod', 'platform:org-wide'], 'a platform admin lists what a tenant may use');
    const reshared = await platform('PUT', `/v1/credentials/${sharedId}`, { ...gcp, sharedWith: ['acme', 'beta'] });
    t.same(reshared.json().sharedWith, ['acme', 'beta']);
    t.equal((await beta.admin('GET', `/v1/credentials/${sharedId}`)).statusCode, 200, 'shared with beta now');
  });

  t.test('choosing the credential a stack runs with takes the admin role', async (t) => {
    const labelled = (name: string, credential: string) =>
      tenantManifest('acme', name, `  labels:\n    ${CREDENTIAL_LABEL}: ${credential}\n`);
    const refused = await acme.deployer('POST', '/v1/resources', labelled('picky', 'prod'));
    t.equal(refused.statusCode, 403);
    t.match(refused.json().message, CREDENTIAL_LABEL);
    const made = await acme.admin('POST', '/v1/resources', labelled('picky', 'prod'));
    t.equal(made.statusCode, 201, made.body);
    const id = made.json().id as string;
    t.equal((await acme.deployer('PUT', `/v1/resources/${id}`, labelled('picky', 'prod'))).statusCode, 200, 'a deployer may keep it');
    t.equal((await acme.deployer('PUT', `/v1/resources/${id}`, labelled('picky', 'org-wide'))).statusCode, 403, 'not change it');
    t.equal((await acme.deployer('PUT', `/v1/resources/${id}`, tenantManifest('acme', 'picky'))).statusCode, 403, 'nor remove it');
    t.equal((await acme.admin('PUT', `/v1/resources/${id}`, labelled('picky', 'org-wide'))).statusCode, 200);
  });

  t.test('tokens: a tenant admin issues and revokes its own tenant’s; platform tokens come from the platform', async (t) => {
    const issued = await acme.admin('POST', '/v1/tokens', { name: 'ci', role: 'deployer' });
    t.equal(issued.statusCode, 201, issued.body);
    t.equal(issued.json().tenant, 'acme');
    t.equal((await acme.admin('POST', '/v1/tokens', { name: 'up', role: 'platform' })).statusCode, 403, 'no way up to platform');
    t.equal((await acme.admin('POST', '/v1/tokens', { name: 'over', role: 'admin', tenant: 'beta' })).statusCode, 403);
    t.equal((await acme.deployer('POST', '/v1/tokens', { name: 'x', role: 'viewer' })).statusCode, 403);
    const listed = (await acme.admin('GET', '/v1/tokens')).json().items as { tenant?: string }[];
    t.ok(listed.length >= 4 && listed.every((x) => x.tenant === 'acme'), 'its own tenant’s tokens only');
    const betaToken = (await beta.admin('GET', '/v1/tokens')).json().items[0].id as string;
    t.equal((await acme.admin('DELETE', `/v1/tokens/${betaToken}`)).statusCode, 404, "another tenant's token is unknown");
    const platformToken = await platform('POST', '/v1/tokens', { name: 'ops', role: 'platform' });
    t.equal(platformToken.statusCode, 201);
    t.equal(platformToken.json().tenant, undefined, 'a platform token is in no tenant');
    t.equal((await platform('POST', '/v1/tokens', { name: 'ops', role: 'platform', tenant: 'acme' })).statusCode, 400);
    const ops = caller(app, platformToken.json().token);
    t.equal((await ops('POST', '/v1/tenants', { name: 'gamma' })).statusCode, 201, 'an issued platform token is a platform admin');
  });

  t.test('the audit log: a tenant admin reads its own tenant’s entries, including the platform’s changes to it', async (t) => {
    const entries = (await acme.admin('GET', '/v1/audit?limit=500')).json().items as {
      tenant?: string;
      action: string;
      actor: { role: string };
    }[];
    t.ok(entries.length > 0);
    t.ok(
      entries.every((e) => e.tenant === 'acme'),
      'only acme entries',
    );
    t.ok(
      entries.some((e) => e.action === 'tenant.update' && e.actor.role === 'platform'),
      'the platform renaming acme is in acme’s log',
    );
    const betaEntries = (await beta.admin('GET', '/v1/audit?tenant=acme')).json().items;
    t.same(betaEntries, []);
    const all = (await platform('GET', '/v1/audit?limit=500')).json().items as { tenant?: string; action: string }[];
    t.ok(all.some((e) => e.action === 'tenant.create' && e.tenant === 'gamma'));
    t.equal((await acme.deployer('GET', '/v1/audit')).statusCode, 403);
  });
});
