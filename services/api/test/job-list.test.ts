import { setTimeout as sleep } from 'node:timers/promises';
import { JOB_LIST_BUILD_LOCK_KEY, JOB_LIST_COMPLETE_KEY, JobListIndex, jobListKey, type StackJobDoc } from '@pds/shared';
import t from 'tap';
import { startApi } from './harness.js';
import { caller, roleCallers, tenantManifest, tenantsWithTokens } from './tenant-helpers.js';

type Call = ReturnType<typeof caller>;

/** Every page of a list, `limit` at a time, as the ids of each page. */
async function pagesOf(call: Call, query: string, limit = 4): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const res = await call('GET', `/v1/jobs?limit=${limit}${query ? `&${query}` : ''}${cursor ? `&cursor=${cursor}` : ''}`);
    if (res.statusCode !== 200) throw new Error(`GET /v1/jobs?${query}: ${res.statusCode} ${res.body}`);
    const page = res.json() as { items: { id: string }[]; nextCursor?: string };
    pages.push(page.items.map((job) => job.id));
    cursor = page.nextCursor;
  } while (cursor);
  return pages;
}

/**
 * GET /v1/jobs from the job list's index (job-list-index.ts) against the same lists read from the
 * store: every page, its items and where it ends, the same for each viewer and filter.
 */
t.test('the job list from its index', async (t) => {
  const { app, models, redis } = await startApi(t);
  const platform = caller(app);
  const tokens = await tenantsWithTokens(app, ['acme', 'beta']);
  const acme = roleCallers(app, tokens.acme!);
  const index = new JobListIndex(redis);
  const resources: Record<string, string> = {};
  for (const [tenant, name] of [
    ['acme', 'web'],
    ['acme', 'db'],
    ['beta', 'web'],
  ] as const) {
    const res = await platform('POST', `/v1/resources?tenant=${tenant}`, tenantManifest(tenant, name));
    t.equal(res.statusCode, 201, res.body);
    resources[`${tenant}/${name}`] = res.json().id;
  }
  const ids: string[] = [];
  // Interleaved across tenants and resources; nothing runs them (no runner), so they stay queued.
  for (let i = 0; i < 15; i++) {
    const resource = resources[['acme/web', 'beta/web', 'acme/db'][i % 3]!]!;
    const res = await platform('POST', `/v1/resources/${resource}/jobs`, { operation: i % 2 ? 'preview' : 'refresh' });
    t.equal(res.statusCode, 202, res.body);
    ids.push(res.json().id);
  }
  // Two jobs created in the same millisecond (ties are ordered by id, as the store orders them), written as queueing writes them.
  const template = (await models.StackJob.findById(ids[0]).lean<StackJobDoc>())!;
  const tied = new Date(template.createdAt.getTime() + 1);
  for (const id of ['tie-a', 'tie-b']) {
    await models.StackJob.collection.insertOne({ ...template, _id: id as never, createdAt: tied, updatedAt: tied });
    await index.add({ ...template, _id: id, createdAt: tied });
  }

  const lists: [string, Call, string][] = [
    ['every job (platform)', platform, ''],
    ["a tenant's, asked by the platform", platform, 'tenant=acme'],
    ["a resource's", platform, `resourceId=${resources['acme/web']}`],
    ["a tenant's own (its viewer)", acme.viewer, ''],
    ["another tenant's resource (its viewer)", acme.viewer, `resourceId=${resources['beta/web']}`],
    ['another tenant (its viewer)', acme.viewer, 'tenant=beta'],
  ];
  const readAll = async () => {
    const read: Record<string, string[][]> = {};
    for (const [name, call, query] of lists) read[name] = await pagesOf(call, query);
    return read;
  };

  // From the store: the index is not complete while another process (here: the test) holds its build.
  await redis.set(JOB_LIST_BUILD_LOCK_KEY, 'someone-else', 'PX', 60_000);
  const fromStore = await readAll();
  t.equal(await redis.get(JOB_LIST_COMPLETE_KEY), null, 'not built while another process builds');
  t.equal(fromStore['every job (platform)']!.flat().length, 17);
  t.same(fromStore['another tenant (its viewer)'], [[]]);
  t.same(fromStore["another tenant's resource (its viewer)"], [[]]);

  // A list finds the index not complete and builds it.
  await redis.del(JOB_LIST_BUILD_LOCK_KEY);
  await pagesOf(platform, '');
  for (let waited = 0; !(await index.complete()); waited += 20) {
    if (waited > 20_000) throw new Error('the job list index was not built within 20 s');
    await sleep(20);
  }
  const fromIndex = await readAll();
  t.same(fromIndex, fromStore, 'every page of every list is the same from the index as from the store');
  const everyJob = fromIndex['every job (platform)']!.flat();
  t.ok(everyJob.indexOf('tie-b') === everyJob.indexOf('tie-a') - 1, 'ties: the greater id first');

  t.test('a job queued now is listed at once; a job gone from the store is skipped and leaves the index', async (t) => {
    const created = await platform('POST', `/v1/resources/${resources['acme/db']}/jobs`, { operation: 'refresh' });
    const newest = (await pagesOf(platform, 'tenant=acme', 1))[0];
    t.same(newest, [created.json().id]);
    await models.StackJob.deleteOne({ _id: created.json().id });
    t.notOk((await pagesOf(platform, 'tenant=acme')).flat().includes(created.json().id));
    t.equal(await redis.zscore(jobListKey({ tenant: 'acme' }), created.json().id), null, 'forgotten where it was met');
  });

  t.test('ids whose jobs are gone are skipped a few rounds at most, then the page comes from the store', async (t) => {
    const resource = resources['acme/db']!;
    const expected = await pagesOf(platform, `resourceId=${resource}`);
    const newest = Date.now() + 60_000; // ahead of every job: met first
    for (let i = 0; i < 40; i++) await redis.zadd(jobListKey({ resource }), newest, `gone-${String(i).padStart(2, '0')}`);
    t.same(await pagesOf(platform, `resourceId=${resource}`), expected);
    // The API forgets each gone id it read on this same connection, so this count comes after those drops.
    const left = await redis.zcount(jobListKey({ resource }), newest, newest);
    t.ok(left > 0 && left < 40, `the page read some of the 40 and stopped (${40 - left} read and dropped, ${left} left)`);
  });

  t.test('a Redis that lost the index lists from the store, then builds it again', async (t) => {
    await redis.del(JOB_LIST_COMPLETE_KEY, jobListKey('all'));
    const again = await pagesOf(platform, '');
    t.same(again.flat().sort(), [...fromStore['every job (platform)']!.flat()].sort());
    for (let waited = 0; !(await index.complete()); waited += 20) {
      if (waited > 20_000) throw new Error('the job list index was not rebuilt within 20 s');
      await sleep(20);
    }
    t.same(await pagesOf(platform, ''), fromStore['every job (platform)']);
  });
});
