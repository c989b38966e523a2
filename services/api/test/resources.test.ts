import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { liveJobs, recordStackLife, type StackJobDoc } from '@pds/shared';
import { auth, manifest, startApi } from './harness.js';

t.test('resources', async (t) => {
  const deps = await startApi(t);
  const { app } = deps;
  const post = (payload: string | object, contentType = 'application/yaml', headers: Record<string, string> = auth) =>
    app.inject({ method: 'POST', url: '/v1/resources', headers: { ...headers, 'content-type': contentType }, payload });

  t.test('a request without a token is refused with 401 saying what is missing', async (t) => {
    const res = await post(manifest('a'), 'application/yaml', {});
    t.equal(res.statusCode, 401);
    t.match(res.json().message, /missing Authorization: Bearer/);
    const wrong = await post(manifest('a'), 'application/yaml', { authorization: 'Bearer nope-nope-nope' });
    t.equal(wrong.statusCode, 401);
    t.match(wrong.json().message, /not valid/);
  });

  t.test('a YAML manifest is created and can be read back', async (t) => {
    const res = await post(manifest('site-a', '  labels:\n    team: web\n'));
    t.equal(res.statusCode, 201);
    const body = res.json();
    t.match(body, { kind: 'LocalFileSet', name: 'site-a', version: 1, labels: { team: 'web' }, spec: { directory: '/tmp/site-a' } });
    const read = await app.inject({ method: 'GET', url: `/v1/resources/${body.id}`, headers: auth });
    t.equal(read.statusCode, 200);
    t.same(read.json(), body);
  });

  t.test('a JSON body carrying the YAML text works the same', async (t) => {
    const res = await post({ manifest: manifest('site-b') }, 'application/json');
    t.equal(res.statusCode, 201);
    t.equal(res.json().stackFqdn, 'organization/local-file-set/site-b');
  });

  t.test('an unknown kind is a 400 that lists the known kinds', async (t) => {
    const res = await post(manifest('x').replace('LocalFileSet', 'GcpCloudSqlX'));
    t.equal(res.statusCode, 400);
    t.match(res.json(), {
      statusCode: 400,
      error: 'INVALID_MANIFEST',
      message: /kind "GcpCloudSqlX" is unknown; known kinds: .*LocalFileSet/,
    });
  });

  t.test('malformed YAML and missing fields are 400s naming the field', async (t) => {
    t.match((await post('kind: [')).json().message, /not valid YAML/);
    t.match((await post(manifest('x', '  labels:\n    a: b\n').replace('  name: x\n', ''))).json().message, /metadata\.name/);
    t.match((await post({ manifest: '' }, 'application/json')).json(), { statusCode: 400 });
  });

  t.test('a second resource with the same name is a 409', async (t) => {
    const first = await post(manifest('dup'));
    t.equal(first.statusCode, 201);
    const res = await post(manifest('dup'));
    t.equal(res.statusCode, 409);
    t.match(res.json().message, `already exists (id ${first.json().id})`, 'naming the one that does, so a client can update it');
    t.equal(res.json().existingId, first.json().id, 'and giving its id as a field');
  });

  t.test('replacing a manifest bumps its version; kind, name and stack cannot change', async (t) => {
    const id = (await post(manifest('versioned'))).json().id;
    const put = (payload: string) =>
      app.inject({ method: 'PUT', url: `/v1/resources/${id}`, headers: { ...auth, 'content-type': 'application/yaml' }, payload });
    const res = await put(manifest('versioned').replace('files: []', 'files: [{path: a, content: b}]'));
    t.equal(res.statusCode, 200);
    t.equal(res.json().version, 2);
    t.equal((await put(manifest('renamed'))).statusCode, 400);
  });

  t.test('an unknown resource is a 404', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/resources/nope', headers: auth });
    t.equal(res.statusCode, 404);
    t.match(res.json().message, /resource nope not found/);
  });

  t.test('the list is newest first and filters by kind', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/resources?kind=LocalFileSet', headers: auth });
    const names = res.json().items.map((r: { name: string }) => r.name);
    t.equal(names[0], 'versioned');
    t.ok(names.includes('site-a'));
    const none = await app.inject({ method: 'GET', url: '/v1/resources?kind=Other', headers: auth });
    t.same(none.json().items, []);
  });

  t.test('lists filter by label and name prefix, and page newest first without repeats', async (t) => {
    for (const name of ['shop-a', 'shop-b', 'shop-c', 'blog-a']) {
      t.equal((await post(manifest(name, `  labels:\n    tier: ${name.startsWith('shop') ? 'gold' : 'free'}\n`))).statusCode, 201);
    }
    const list = async (query: string) => (await app.inject({ method: 'GET', url: `/v1/resources?${query}`, headers: auth })).json();
    t.same(
      (await list('label=tier%3Dgold')).items.map((r: { name: string }) => r.name),
      ['shop-c', 'shop-b', 'shop-a'],
    );
    t.same(
      (await list('namePrefix=blog')).items.map((r: { name: string }) => r.name),
      ['blog-a'],
    );
    t.same((await list('namePrefix=.%2A')).items, [], 'the prefix is text, not a pattern');
    const first = await list('label=tier%3Dgold&limit=2');
    t.equal(first.items.length, 2);
    const second = await list(`label=tier%3Dgold&limit=2&cursor=${first.nextCursor}`);
    t.same(
      second.items.map((r: { name: string }) => r.name),
      ['shop-a'],
    );
    t.notOk(second.nextCursor, 'the last page has no cursor');
    t.match(await list('label=no-equals-sign'), { statusCode: 400, message: /label/ });
  });

  t.test('delete: refused while jobs are active or the stack is deployed, unless forced by an admin', async (t) => {
    const { models } = deps;
    const resource = (await post(manifest('doomed'))).json();
    const del = (query = '', headers = auth) => app.inject({ method: 'DELETE', url: `/v1/resources/${resource.id}${query}`, headers });
    const job = (
      await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload: { operation: 'up' } })
    ).json();
    const busy = await del();
    t.equal(busy.statusCode, 409);
    t.match(busy.json().message, new RegExp(`queued or running job\\(s\\) \\(${job.id}\\).*force=true`));
    // The up ran and succeeded (as a runner records it: the job ended, no longer live, the stack deployed).
    const ended = await models.StackJob.findOneAndUpdate(
      { _id: job.id },
      { $set: { status: 'succeeded', finishedAt: new Date() } },
      { returnDocument: 'after' },
    ).lean<StackJobDoc>();
    await liveJobs(models).forget(job.id);
    await recordStackLife(models, ended!, { status: 'succeeded', at: new Date() });
    const deployed = await del();
    t.equal(deployed.statusCode, 409);
    t.match(
      deployed.json().message,
      new RegExp(`still has deployed resources \\(last change: up job ${job.id}\\).*run a destroy job first`),
    );
    // A destroy that failed half-way: the stack is no longer shown deployed; its jobs still say so.
    await recordStackLife(models, { ...ended!, operation: 'destroy' }, { status: 'failed', at: new Date() });
    t.match((await del()).json().message, new RegExp(`last change: up job ${job.id}`));
    const destroy = await models.StackJob.create({
      ...job,
      _id: undefined,
      operation: 'destroy',
      status: 'succeeded',
      finishedAt: new Date(Date.now() + 1000),
    });
    await recordStackLife(models, destroy, { status: 'succeeded', at: new Date() });
    t.equal((await del()).statusCode, 200, 'after a successful destroy it goes');
    t.equal((await app.inject({ method: 'GET', url: `/v1/resources/${resource.id}`, headers: auth })).statusCode, 404);
    t.equal((await del()).statusCode, 404);
  });

  t.test('a forced delete cancels the queued jobs and needs admin', async (t) => {
    const { models } = deps;
    const resource = (await post(manifest('forced'))).json();
    const job = (
      await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload: { operation: 'up' } })
    ).json();
    const res = await app.inject({ method: 'DELETE', url: `/v1/resources/${resource.id}?force=true`, headers: auth });
    t.equal(res.statusCode, 200);
    t.equal((await models.StackJob.findById(job.id).lean())?.status, 'cancelled');
  });
});

t.test(
  'a LocalFileSet folder must be inside LOCAL_FILES_ROOT: elsewhere, dot segments and symbolic links are refused when stored',
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'pds-files-root-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    await symlink('/etc', join(root, 'etc-link'));
    await mkdir(join(root, 'real'));
    await symlink(join(root, 'real'), join(root, 'real-link'));
    const { app } = await startApi(t, { config: { LOCAL_FILES_ROOT: root } });
    const post = (directory: string, name = 'paths') =>
      app.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...auth, 'content-type': 'application/yaml' },
        payload: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: ${JSON.stringify(directory)}\n  files: []\n`,
      });
    for (const [directory, reason] of [
      ['/var/lib/pulumi-deploy/state', /must be inside .* \(LOCAL_FILES_ROOT\)/],
      [root, /not the root itself/],
      [`${root}/../elsewhere`, /normalised/],
      [`${root}//twice`, /normalised/],
      [`${root}/etc-link/cron.d`, /symbolic link/],
      [`${root}/real-link`, /symbolic link/],
      ['relative/dir', /absolute path/],
    ] as const) {
      const res = await post(directory);
      t.equal(res.statusCode, 400, directory);
      t.match(res.json().message, /^spec\.directory/, 'names the field');
      t.match(res.json().message, reason, directory);
    }
    t.equal((await post(`${root}/real/site`)).statusCode, 201, 'a new folder under a real folder of the root');
    const created = await post(`${root}/site`, 'site');
    t.equal(created.statusCode, 201);
    const replaced = await app.inject({
      method: 'PUT',
      url: `/v1/resources/${created.json().id}`,
      headers: { ...auth, 'content-type': 'application/yaml' },
      payload: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: site\nspec:\n  directory: /root\n  files: []\n`,
    });
    t.equal(replaced.statusCode, 400, 'a replacement is checked too');
  },
);

t.test('two resources never share or nest their local folders: 409 naming the other', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'pds-files-root-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const { app } = await startApi(t, { config: { LOCAL_FILES_ROOT: root } });
  const body = (name: string, directory: string) =>
    `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: ${directory}\n  files: []\n`;
  const poster = (api: typeof app) => (name: string, directory: string) =>
    api.inject({
      method: 'POST',
      url: '/v1/resources',
      headers: { ...auth, 'content-type': 'application/yaml' },
      payload: body(name, directory),
    });
  const post = poster(app);
  const site = await post('site', `${root}/site`);
  t.equal(site.statusCode, 201);
  for (const [name, directory, how] of [
    ['same', `${root}/site`, 'is'],
    ['inner', `${root}/site/inner`, 'nests with'],
    ['outer', `${root}/site/`, 'is'],
  ] as const) {
    const res = await post(name, directory);
    t.equal(res.statusCode, 409, directory);
    t.match(res.json().message, new RegExp(`^spec.directory .* ${how} the folder of LocalFileSet site \\(${root}/site\\)`), directory);
  }
  t.equal((await post('sibling', `${root}/site-2`)).statusCode, 201, 'a folder whose name only starts the same is apart');
  // A root reached through a link: a folder named through the link and one through the real path are one.
  const viaLink = `${root}-link`;
  await symlink(root, viaLink);
  t.teardown(() => rm(viaLink, { force: true }));
  const { app: linked } = await startApi(t, { config: { LOCAL_FILES_ROOT: viaLink } });
  const postLinked = poster(linked);
  t.equal((await postLinked('through-link', `${viaLink}/shared`)).statusCode, 201);
  const twin = await postLinked('through-real', `${root}/shared/inner`);
  t.equal(twin.statusCode, 409, 'a folder named through the real path is compared with one named through the link');
  const outer = await post('parent', `${root}/parent`);
  t.equal(outer.statusCode, 201);
  const moved = await app.inject({
    method: 'PUT',
    url: `/v1/resources/${site.json().id}`,
    headers: { ...auth, 'content-type': 'application/yaml' },
    payload: body('site', `${root}/parent/site`),
  });
  t.equal(moved.statusCode, 409, 'a replacement is checked against the others');
  const kept = await app.inject({
    method: 'PUT',
    url: `/v1/resources/${site.json().id}`,
    headers: { ...auth, 'content-type': 'application/yaml' },
    payload: body('site', `${root}/site`),
  });
  t.equal(kept.statusCode, 200, 'but not against itself');
});

t.test('a manifest past MANIFEST_MAX_BYTES is refused with 413', async (t) => {
  const { app } = await startApi(t, { config: { MANIFEST_MAX_BYTES: 2048 } });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...auth, 'content-type': 'application/yaml' },
    payload: `${manifest('big')}# ${'x'.repeat(4096)}\n`,
  });
  t.equal(res.statusCode, 413);
  t.match(res.json().message, /at most 2048/);
});
