/**
 * The web console in a real Chromium against the real services and the real Pulumi CLI: served with
 * a strict policy, sign-in, a deployment from the generated form (a refused value shown inline, then
 * the resource table and the log filling live, the files on disk), the jobs list updating by itself,
 * sign-out and a revoked token, what a viewer and another tenant see; axe-core on every page.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { axeViolations, consolePage, launchChromium, servicesForConsole, signIn } from './console-harness.js';
import { createResource, fileSetManifest, queueJob, TOKEN, waitForJob } from './harness.js';

const { stack, apiUrl, consoleUrl } = await servicesForConsole(t);
const browser = await launchChromium(t);
const origins = [apiUrl, stack.gatewayUrl.replace(/^ws/, 'http')];
const auth = { authorization: `Bearer ${TOKEN}` };
const call = async (method: string, path: string, body?: object) => {
  const res = await stack.api.inject({ method: method as 'GET', url: path, headers: auth, ...(body ? { payload: body } : {}) });
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${res.body}`);
  return res.json();
};

t.test('served under /console: a strict policy, cached by content, compressed', async (t) => {
  const redirect = await fetch(`${apiUrl}/console`, { redirect: 'manual' });
  t.equal(redirect.status, 308);
  t.equal(redirect.headers.get('location'), 'console/', 'relative: it holds under a proxy sub-path');
  const index = await fetch(consoleUrl);
  t.equal(index.status, 200);
  t.equal(index.headers.get('cache-control'), 'no-cache', 'the page names the build: never cached');
  const policy = index.headers.get('content-security-policy') ?? '';
  t.match(policy, /default-src 'none'/);
  t.match(policy, /script-src 'self'(;|$)/, 'no inline script, no eval, nothing remote');
  t.match(policy, new RegExp(`connect-src 'self' ${stack.gatewayUrl}(;|$)`), 'connections: the API and the gateway only');
  t.match(policy, /frame-ancestors 'none'/);
  t.equal(index.headers.get('x-content-type-options'), 'nosniff');
  const html = await index.text();
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string).filter((src) => !src.startsWith('data:'));
  t.ok(assets.length >= 2, `the page loads ${assets.join(', ')}`);
  for (const asset of assets) {
    t.match(asset, /^assets\/[\w.-]+-[A-Z0-9]{8}\.(js|css)$/, `${asset}: relative and named by its content`);
    const res = await fetch(`${consoleUrl}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
    t.equal(res.status, 200);
    t.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    t.equal(res.headers.get('content-encoding'), 'gzip', `${asset} is served gzipped`);
  }
  t.equal((await fetch(`${consoleUrl}settings.json`).then((r) => r.json())).gatewayUrl, `ws://127.0.0.1:${new URL(stack.gatewayUrl).port}`);
});

t.test('sign in, deploy from the generated form, watch it live, sign out', async (t) => {
  const { page, problems } = await consolePage(browser, origins);
  const violations: string[] = [];
  const axe = async (name: string) => violations.push(...(await axeViolations(page)).map((v) => `${name}: ${v}`));

  await page.goto(`${consoleUrl}#/jobs`);
  await page.getByLabel('API token').fill('pds_not-a-token-at-all-0000000000000000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/That token was refused/).waitFor();
  await axe('sign-in');
  await signIn(page, consoleUrl);
  t.notMatch(page.url(), TOKEN.slice(0, 12), 'no token in the URL');
  await page.reload();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  t.pass('a reload keeps the tab signed in');
  await page.getByRole('heading', { name: 'Jobs' }).waitFor();
  await axe('jobs');

  await page.getByRole('link', { name: 'Templates', exact: true }).click();
  await page.getByRole('link', { name: 'LocalFileSet' }).click();
  await page.getByLabel('Name').first().fill('console-demo');
  await page.getByLabel('directory').fill('/etc/console-demo');
  await page.getByRole('button', { name: 'Add file' }).click();
  await page.getByLabel('path').fill('hello.txt');
  await page.getByLabel('content').fill('hello from the console\n');
  await page.getByRole('button', { name: 'Add file' }).click();
  await page.getByLabel('path').nth(1).fill('slow.txt');
  await page.getByLabel('content').nth(1).fill('slow');
  await page.getByLabel('delayMs').nth(1).fill('2500');
  await t.resolveMatch(page.locator('aside.yaml pre').textContent(), /kind: LocalFileSet[\s\S]*delayMs: 2500/, 'the YAML beside the form');
  await axe('deploy form');
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  const inline = page.locator('#f-spec-directory-error');
  await inline.waitFor();
  t.match(await inline.textContent(), /must be inside .* \(LOCAL_FILES_ROOT\)/, 'the refused value, under its field');
  t.equal(await page.getByLabel('directory').getAttribute('aria-invalid'), 'true');
  t.same((await call('GET', '/v1/resources')).items, [], 'nothing was created');

  const directory = await mkdtemp(join(tmpdir(), 'console-demo-'));
  await page.getByLabel('directory').fill(directory);
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  await page.getByRole('heading', { name: /up console-demo/ }).waitFor();
  // Live: the slow file's row is in progress, and the log has Pulumi's lines, before the job ends.
  const slowRow = page.locator('table.resources tr', { hasText: 'slow.txt' });
  await slowRow.getByText('running').waitFor({ timeout: 60_000 });
  t.match(await page.locator('.log-box').textContent(), /Updating \(console-demo\)/, 'the log fills while it runs');
  t.match(await page.locator('.badge').first().textContent(), /running/);
  await axe('job, live');
  await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
  await slowRow.getByText('done').waitFor();
  t.equal(await readFile(join(directory, 'hello.txt'), 'utf8'), 'hello from the console\n', 'the real up wrote the file');
  t.match(await page.locator('.log-box').textContent(), /Resources:/);
  t.match(await page.locator('table.outputs').textContent(), new RegExp(directory), 'its outputs');
  t.match(await page.locator('.progress-text').textContent(), /100%/);

  // The same name again: the form asks before replacing that resource's manifest.
  await page.goto(`${consoleUrl}#/templates/LocalFileSet`);
  await page.getByLabel('Name').first().fill('console-demo');
  await page.getByLabel('directory').fill(directory);
  await page.getByRole('button', { name: 'Add file' }).click();
  await page.getByLabel('path').fill('hello.txt');
  await page.getByLabel('content').fill('hello again\n');
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  const exists = page.getByRole('alert').filter({ hasText: 'A resource named console-demo exists' });
  await exists.waitFor();
  t.equal((await call('GET', '/v1/resources')).items[0].version, 1, 'asking changed nothing');
  await exists.getByRole('button', { name: 'Replace it and deploy' }).click();
  await page.getByRole('heading', { name: /up console-demo/ }).waitFor();
  await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
  t.equal(await readFile(join(directory, 'hello.txt'), 'utf8'), 'hello again\n', 'the replaced manifest was deployed');

  // The jobs list updates by itself: a job queued elsewhere appears without a reload.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await page.getByRole('heading', { name: 'Jobs' }).waitFor();
  const resource = (await call('GET', '/v1/resources')).items[0];
  const preview = await queueJob(stack, resource.id, { operation: 'preview' });
  await page.locator(`a[href="#/jobs/${preview.id}"]`).waitFor({ timeout: 15_000 });
  t.pass('the new job appeared in the list');
  await waitForJob(stack.models, preview.id, (doc) => doc.status === 'succeeded');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You signed out.').waitFor();
  t.equal(await page.evaluate(() => sessionStorage.length), 0, 'the token is gone from the tab');
  t.same(violations, [], 'axe-core: no serious or critical violation');
  t.same(problems, [], 'no page error, no policy violation, nothing from another origin');
});

t.test('every other page passes axe: templates, resources, settings (tokens shown once, webhooks, audit, tenants)', async (t) => {
  const { page, problems } = await consolePage(browser, origins);
  const violations: string[] = [];
  const visit = async (hash: string, heading: string | RegExp) => {
    await page.goto(`${consoleUrl}${hash}`);
    await page
      .getByRole('heading', { name: heading, exact: typeof heading === 'string' })
      .first()
      .waitFor();
    violations.push(...(await axeViolations(page)).map((v) => `${hash}: ${v}`));
  };
  await signIn(page, consoleUrl, TOKEN, '#/templates');
  await visit('#/templates', 'Built in');
  await visit('#/resources', 'Resources');
  await visit('#/settings/tokens', 'New token');
  await page.getByLabel('Name', { exact: true }).fill('console-made');
  await page.getByRole('button', { name: 'Create token' }).click();
  const shown = await page.locator('code.secret-once').textContent();
  t.match(shown, /^pds_/, 'the new token, shown once');
  await page.reload();
  await page.getByRole('heading', { name: 'Tokens', exact: true }).waitFor();
  t.notMatch(await page.textContent('main'), shown ?? 'never', 'and not again');
  await visit('#/settings/webhooks', 'New webhook');
  await visit('#/settings/audit', 'Audit log');
  await page.getByText('token.create').first().waitFor();
  await visit('#/settings/tenants', 'New tenant');
  t.same(violations, [], 'axe-core: no serious or critical violation');
  t.same(problems, []);
});

t.test('a token revoked while signed in returns the tab to sign-in, saying why', async (t) => {
  const token = await call('POST', '/v1/tokens', { name: 'short-lived', role: 'viewer' });
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, token.token);
  await call('DELETE', `/v1/tokens/${token.id}`);
  await page.getByText(/Signed out: .*revoked/).waitFor({ timeout: 15_000 });
  t.pass('the jobs page, reloading, was refused and said so');
  t.same(problems, []);
});

t.test("a viewer sees no button it cannot use; another tenant's job is not found", async (t) => {
  const resource = await createResource(stack, fileSetManifest('viewer-demo', await mkdtemp(join(tmpdir(), 'viewer-demo-')), []));
  const job = await queueJob(stack, resource.id, { operation: 'up' });
  await waitForJob(stack.models, job.id, (doc) => doc.status === 'succeeded');
  const viewer = await call('POST', '/v1/tokens', { name: 'reader', role: 'viewer' });
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, viewer.token, `#/resources/${resource.id}`);
  await page.getByRole('heading', { name: 'viewer-demo' }).waitFor();
  await page.getByRole('heading', { name: 'Versions', exact: true }).waitFor();
  const actions = /^(Deploy|Preview|Refresh|Destroy|Restore|Forget|Rename|Unprotect|Repair|Cancel job|Approve|Reject)/;
  t.equal(await page.getByRole('button', { name: actions }).count(), 0, 'a viewer: no action buttons on a resource');
  t.same(await axeViolations(page), [], 'axe: resource page');
  await page.goto(`${consoleUrl}#/jobs/${job.id}`);
  await page.getByRole('heading', { name: /up viewer-demo/ }).waitFor();
  t.equal(await page.getByRole('button', { name: actions }).count(), 0, 'nor on a job');
  await page.goto(`${consoleUrl}#/settings`);
  await page.getByText('need the admin role').waitFor();

  await call('POST', '/v1/tenants', { name: 'beta' });
  const outsider = await call('POST', '/v1/tokens', { name: 'beta-admin', role: 'admin', tenant: 'beta' });
  const other = await consolePage(browser, origins);
  await signIn(other.page, consoleUrl, outsider.token, `#/jobs/${job.id}`);
  await other.page.getByRole('heading', { name: 'Job not found' }).waitFor();
  t.notMatch(await other.page.textContent('main'), /viewer-demo/, 'nothing of it shows');
  t.same([...problems, ...other.problems], []);
});
