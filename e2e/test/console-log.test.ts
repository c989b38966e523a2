/**
 * A 100,000-line job in the console (real Chromium, real services): the log is virtualised (the page
 * holds a few dozen rows whatever the length), scrolls to its middle, finds a line by search, and
 * opens at a line anchor from the URL. The job is a real run whose stored log was made long (the
 * gateway replays what the store has: the page cannot tell).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lengthenJobLog } from '@pds/devkit';
import t from 'tap';
import { consolePage, launchChromium, servicesForConsole, signIn } from './console-harness.js';
import { createResource, fileSetManifest, queueJob, TOKEN, waitForJob } from './harness.js';

const LINES = 100_000;

const { stack, apiUrl, consoleUrl } = await servicesForConsole(t);
const browser = await launchChromium(t);
const origins = [apiUrl, stack.gatewayUrl.replace(/^ws/, 'http')];

/** A real preview, then its stored log made `LINES` lines longer. */
async function longJob() {
  const resource = await createResource(stack, fileSetManifest('long-log', await mkdtemp(join(tmpdir(), 'long-log-')), []));
  const job = await queueJob(stack, resource.id, { operation: 'preview' });
  await waitForJob(stack.models, job.id, (doc) => doc.status === 'succeeded', 60_000);
  return { id: job.id as string, ...(await lengthenJobLog(stack.models, job.id, LINES)) };
}

t.test('a 100,000-line log: virtualised, scrolled to its middle, searched, opened at an anchor', async (t) => {
  const job = await longJob();
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, TOKEN, `#/jobs/${job.id}`);
  const everything = `${job.textLines.toLocaleString('en-US')} lines`;
  await page.waitForFunction((text) => document.querySelector('.log-bar .muted')?.textContent === text, everything, { timeout: 120_000 });
  t.pass(`the whole log arrived: ${everything}`);
  const rows = await page.locator('.log-line').count();
  t.ok(rows > 10 && rows < 200, `the page holds ${rows} rows of the log, not all of them`);

  // The middle: the rows there are the middle's lines.
  const middle = job.first + LINES / 2;
  await page.locator('.log-box').evaluate((box) => (box.scrollTop = box.scrollHeight / 2));
  await page.locator(`.log-line[data-seq="${middle}"]`).waitFor();
  t.pass(`line ${middle} is on screen after scrolling to the middle`);
  t.equal(await page.getByRole('button', { name: 'Follow' }).getAttribute('aria-pressed'), 'false', 'scrolling up paused following');

  // Search: the needle nearest the middle.
  const needle = Math.ceil(middle / 97) * 97;
  await page.getByPlaceholder('Search the log').fill(`needle-${needle}`);
  await page.getByText('1 of 1').waitFor();
  await page.getByPlaceholder('Search the log').press('Enter');
  await page.locator(`.log-line.hit[data-seq="${needle}"]`).waitFor();
  t.match(
    await page.locator(`.log-line[data-seq="${needle}"] .lt`).textContent(),
    new RegExp(`^\\+ step ${needle}: resource line needle-${needle}$`),
    'colours parsed, text intact',
  );
  t.equal(await page.locator(`.log-line[data-seq="${needle}"] .fg-2`).textContent(), '+', 'the green + is green');

  // An anchor in the URL opens the page at that line.
  const anchor = job.first + 77_777;
  await page.goto(`${consoleUrl}#/jobs/${job.id}?line=${anchor}`);
  await page.reload();
  await page.locator(`.log-line.sel[data-seq="${anchor}"]`).waitFor({ timeout: 120_000 });
  t.pass(`opened at line ${anchor}`);
  t.same(problems, []);
});
