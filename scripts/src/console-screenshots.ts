/**
 * `npm run screenshots`: the console's main pages in light and dark, at 1280×800 (and a job at a
 * phone's 390×844), into
 * docs/screenshots/ (the README shows them). Starts the embedded default on a scratch data folder,
 * makes what the pages show (a deployed resource with two state versions, a job caught live, an
 * uploaded template) and drives Debian's Chromium.
 */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiCaller, launchChromium, startLocalDeployment } from '@pds/devkit';
import { repoRoot } from '@pds/shared';
import type { Page } from 'playwright-core';

const out = join(repoRoot, 'docs', 'screenshots');
const dataDir = await mkdtemp(join(tmpdir(), 'pds-screenshots-'));
await chmod(dataDir, 0o711); // jobs run as their slot's uid and must reach their folders
const deployment = await startLocalDeployment({ ...process.env, LOG_LEVEL: 'warn' }, () => undefined, { dataDir });
const token = deployment.env.ADMIN_TOKEN as string;
const files = join(dataDir, 'files');

const call = apiCaller(deployment.apiUrl, token);

const manifest = (name: string, entries: { path: string; content: string; delayMs?: number }[]) =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\n  labels:\n    team: platform\nspec:\n  directory: ${join(files, name)}\n  files:\n${entries
    .map((f) => `    - path: ${f.path}\n      content: ${JSON.stringify(f.content)}\n${f.delayMs ? `      delayMs: ${f.delayMs}\n` : ''}`)
    .join('')}`;

async function ended(id: string): Promise<void> {
  for (;;) {
    const job = await call<{ status: string }>('GET', `/v1/jobs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function shoot(page: Page, name: string): Promise<void> {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(out, `${name}-${scheme}.png`) });
  }
}

const browser = await launchChromium();
try {
  await mkdir(out, { recursive: true });
  const site = await call<{ id: string }>(
    'POST',
    '/v1/resources',
    undefined,
    manifest('web-site', [{ path: 'index.html', content: '<h1>hello</h1>' }]),
  );
  await ended((await call<{ id: string }>('POST', `/v1/resources/${site.id}/jobs`, { operation: 'up' })).id);
  await call(
    'PUT',
    `/v1/resources/${site.id}`,
    undefined,
    manifest('web-site', [
      { path: 'index.html', content: '<h1>hello again</h1>' },
      { path: 'robots.txt', content: 'User-agent: *' },
    ]),
  );
  await ended((await call<{ id: string }>('POST', `/v1/resources/${site.id}/jobs`, { operation: 'up' })).id);
  await ended((await call<{ id: string }>('POST', `/v1/resources/${site.id}/jobs`, { operation: 'preview' })).id);

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${deployment.apiUrl}/console/#/jobs`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Jobs' }).waitFor();

  // A job caught live: a slow file in progress.
  const live = await call<{ id: string }>(
    'POST',
    '/v1/resources',
    undefined,
    manifest('data-pipeline', [
      { path: 'config.yaml', content: 'replicas: 3' },
      { path: 'schema.sql', content: 'create table t (id int);' },
      { path: 'warehouse.parquet', content: 'x', delayMs: 15_000 },
    ]),
  );
  const liveJob = await call<{ id: string }>('POST', `/v1/resources/${live.id}/jobs`, { operation: 'up' });
  await page.goto(`${deployment.apiUrl}/console/#/jobs/${liveJob.id}`);
  await page.locator('table.resources tr', { hasText: 'warehouse.parquet' }).getByText('running').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1_500);
  await shoot(page, 'job-live');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.screenshot({ path: join(out, 'job-live-phone.png') });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${deployment.apiUrl}/console/#/jobs`);
  await page.getByRole('heading', { name: 'Jobs' }).waitFor();
  await page.waitForTimeout(500);
  await shoot(page, 'jobs');

  await page.goto(`${deployment.apiUrl}/console/#/templates/LocalFileSet`);
  await page.getByLabel('Name').first().fill('team-docs');
  await page.getByLabel('directory').fill('/etc/not-allowed');
  await page.getByRole('button', { name: 'Add file' }).click();
  await page.getByLabel('path').fill('README.md');
  await page.getByLabel('content').fill('# Team docs');
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  await page.locator('#f-spec-directory-error').waitFor();
  await page.getByRole('heading', { name: 'Deploy' }).scrollIntoViewIfNeeded();
  await shoot(page, 'deploy-form');

  await page.goto(`${deployment.apiUrl}/console/#/resources/${site.id}`);
  await page.getByRole('heading', { name: 'Compare versions' }).scrollIntoViewIfNeeded();
  await page.getByRole('list', { name: /Differences from version 1 to version 2/ }).waitFor();
  await page.getByRole('heading', { name: 'State' }).evaluate((h) => h.scrollIntoView());
  await shoot(page, 'state-diff');

  await ended(liveJob.id);
  await page.goto(`${deployment.apiUrl}/console/#/templates`);
  await page.getByLabel('Name (the kind manifests name)').fill('Greeter');
  await page.getByRole('button', { name: 'Create and edit' }).click();
  await page.locator('.editor-main .monaco-editor').waitFor({ timeout: 60_000 });
  await page.locator('.editor-main .monaco-editor').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.type('pulumi.');
  await page.locator('.editor-main .suggest-widget .monaco-list-row').first().waitFor({ timeout: 60_000 });
  await shoot(page, 'template-editor');
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await deployment.stop();
  await rm(dataDir, { recursive: true, force: true });
}
