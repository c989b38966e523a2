/**
 * The console's decisions in a real Chromium against the real services and Pulumi CLI: approving a
 * gated deployment after reading its changes, cancelling a running one behind its confirmation, and
 * a stack's state versions (a diff between two, then a restore of the earlier one).
 */
import { access, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { axeViolations, consolePage, launchChromium, servicesForConsole, signIn } from './console-harness.js';
import { ownGateway } from './cli-harness.js';
import { createResource, fileSetManifest, queueJob, replaceResource, storedLines, TOKEN, waitForJob } from './harness.js';

const { stack, apiUrl, consoleUrl } = await servicesForConsole(t, { CANCEL_GRACE_SECONDS: 2 });
const browser = await launchChromium(t);
const origins = [apiUrl, stack.gatewayUrl.replace(/^ws/, 'http')];
const call = async (method: string, path: string, body?: object) => {
  const res = await stack.api.inject({
    method: method as 'GET',
    url: path,
    headers: { authorization: `Bearer ${TOKEN}` },
    ...(body ? { payload: body } : {}),
  });
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${res.body}`);
  return res.json();
};
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
const ended = (id: string, status: string) => waitForJob(stack.models, id, (doc) => doc.status === status, 60_000);

t.test('approve a gated deployment after reading its changes', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'console-gated-'));
  const resource = await createResource(stack, fileSetManifest('gated', directory, [{ path: 'approved.txt', content: 'yes\n' }]));
  const job = await queueJob(stack, resource.id, { operation: 'up', requireApproval: true });
  await ended(job.id, 'awaiting_approval');
  const approver = await call('POST', '/v1/tokens', { name: 'approver', role: 'admin' });
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, approver.token);
  const pinned = page.locator('.pinned');
  await pinned.getByRole('heading', { name: 'Awaiting approval' }).waitFor();
  await pinned.locator(`a[href="#/jobs/${job.id}"]`).click();
  const changes = page.locator('table', { has: page.locator('caption', { hasText: 'What it will change' }) });
  await changes.waitFor();
  t.match(await changes.textContent(), /create.*pulumi-nodejs:dynamic:Resource.*approved\.txt/s, 'the preview’s changes, by resource');
  t.same(await axeViolations(page), [], 'axe: an approval');
  t.notOk(await exists(join(directory, 'approved.txt')), 'nothing changed before the decision');
  await page.getByRole('button', { name: 'Approve' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Comment (optional)').fill('read it, fine');
  await dialog.getByRole('button', { name: 'Approve' }).click();
  await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
  await page.getByText(/approver approved at .*: “read it, fine”/).waitFor();
  t.ok(await exists(join(directory, 'approved.txt')), 'the approved up wrote the file');
  t.same(problems, []);
});

t.test('cancel a running deployment behind its confirmation', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'console-cancel-'));
  const resource = await createResource(
    stack,
    fileSetManifest('cancelled', directory, [{ path: 'slow.txt', content: 'x', delayMs: 60_000 }]),
  );
  const job = await queueJob(stack, resource.id, { operation: 'up' });
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, TOKEN, `#/jobs/${job.id}`);
  await page.locator('table.resources tr', { hasText: 'slow.txt' }).getByText('running').waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Cancel job' }).click();
  const dialog = page.getByRole('dialog');
  t.match(await dialog.textContent(), /Pulumi is stopped gracefully/, 'the confirmation says what will happen');
  await dialog.getByRole('button', { name: 'Keep as is' }).click();
  t.equal((await call('GET', `/v1/jobs/${job.id}`)).status, 'running', 'keeping it changes nothing');
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await dialog.getByRole('button', { name: 'Cancel the job' }).click();
  await page.locator('.page-head .badge', { hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
  t.equal(await page.getByRole('button', { name: 'Cancel job' }).count(), 0, 'no cancel on an ended job');
  t.same(problems, []);
});

t.test('the log resumes from its last line after the gateway restarts, each line once', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'console-resume-'));
  const resource = await createResource(
    stack,
    fileSetManifest('resumed', directory, [
      { path: 'first.txt', content: '1' },
      { path: 'slow.txt', content: '2', delayMs: 6_000 },
    ]),
  );
  const job = await queueJob(stack, resource.id, { operation: 'up' });
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, TOKEN, `#/jobs/${job.id}`);
  await page.locator('table.resources tr', { hasText: 'slow.txt' }).getByText('running').waitFor({ timeout: 60_000 });
  const port = Number(new URL(stack.gatewayUrl).port);
  await stack.gateway.close();
  await page.locator('.conn-reconnecting').waitFor();
  t.pass('the page says it is reconnecting');
  const gateway = await ownGateway(stack, port);
  t.teardown(() => gateway.stop());
  await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
  await page.locator('.conn-ended').waitFor();
  const stored = (await storedLines(stack, job.id)).filter((line) => line.text !== undefined).map((line) => line.seq);
  // The log keeps every line it was handed (a duplicate would make more, a gap fewer) and the page
  // shows the rows in view: compare both ends with the store.
  await page.getByText(`${stored.length} lines`).waitFor();
  const rows = () => page.locator('.log-line').evaluateAll((all) => all.map((row) => Number(row.getAttribute('data-seq'))));
  const atEnd = await rows();
  t.same(atEnd, stored.slice(-atEnd.length), `the last ${atEnd.length} rows are the stored lines' last`);
  await page.locator('.log-box').evaluate((box) => (box.scrollTop = 0));
  await page.locator(`.log-line[data-seq="${stored[0]}"]`).waitFor();
  const atStart = await rows();
  t.same(atStart, stored.slice(0, atStart.length), `the first ${atStart.length} rows are the stored lines' first`);
  t.pass(`${stored.length} lines, each once, in order, across the restart`);
  t.same(problems, []);
});

t.test("a stack's state versions: the diff between two, then a restore of the first", async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'console-state-'));
  const resource = await createResource(stack, fileSetManifest('stateful', directory, [{ path: 'one.txt', content: '1' }]));
  await ended((await queueJob(stack, resource.id)).id, 'succeeded');
  await replaceResource(
    stack,
    resource.id,
    fileSetManifest('stateful', directory, [
      { path: 'one.txt', content: '1' },
      { path: 'two.txt', content: '2' },
    ]),
  );
  await ended((await queueJob(stack, resource.id)).id, 'succeeded');
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, TOKEN, `#/resources/${resource.id}`);
  await page.getByRole('heading', { name: 'Compare versions' }).waitFor();
  const diff = page.getByRole('list', { name: 'Differences from version 1 to version 2' });
  await diff.waitFor();
  t.match(await diff.textContent(), /\+ two\.txt added/, 'version 2 added two.txt');
  t.same(await axeViolations(page), [], 'axe: a resource with its state');
  await page.getByRole('button', { name: 'Restore 1' }).click();
  const dialog = page.getByRole('dialog');
  t.match(
    await dialog.textContent(),
    /becomes version 1 \(\d+ resources, written by the up of .*\) in place of version 2/,
    'the confirmation names both versions',
  );
  await dialog.getByRole('button', { name: 'Restore 1' }).click();
  await page.getByRole('heading', { name: /restore stateful/ }).waitFor();
  await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
  const state = await call('GET', `/v1/resources/${resource.id}/stack`);
  t.equal(state.version, 3, 'the restore is a state version of its own');
  t.notOk(
    state.resources.some((r: { name: string }) => r.name === 'two.txt'),
    'two.txt is not in the restored state',
  );
  t.same(problems, []);
});
