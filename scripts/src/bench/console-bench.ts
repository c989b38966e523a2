/**
 * Console figures, against the embedded default (the three services as processes, as `npm run dev`
 * starts them) and Debian's Chromium, each beside a raw baseline measured in the same run:
 * - what a first visit downloads: the console's JavaScript and CSS gzipped, before the editor
 *   (Monaco and its TypeScript worker are counted apart: only the editor page loads them);
 * - a job's first line on screen, from its creation: the console's job page against a raw WebSocket
 *   client (ticket + stream) started at the same moment for the same job;
 * - a 100,000-line log opened (replayed at wire speed), scrolled to its middle and searched: the
 *   longest task the page ran (PerformanceObserver `longtask`), and the time until every line is in,
 *   against a raw client reading the same replay.
 */
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleRoot } from '@pds/console';
import { apiCaller, launchChromium, lengthenJobLog, startLocalDeployment } from '@pds/devkit';
import { connectMongo, createModels } from '@pds/shared';
import type { Page } from 'playwright-core';
import WebSocket from 'ws';
import { benchStep, fmt, percentile, row, sized } from './stats.js';

const manifest = (name: string, directory: string) =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: ${directory}\n  files:\n    - path: a.txt\n      content: a\n`;

async function gzipped(relative: string): Promise<number> {
  return (await stat(join(consoleRoot, `${relative}.gz`))).size;
}

/** The first visit's download (index.html's script and stylesheet), and the editor's apart. */
async function sizes(): Promise<void> {
  const html = await readFile(join(consoleRoot, 'index.html'), 'utf8');
  const files = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1] as string);
  const js = files.filter((f) => f.endsWith('.js'));
  const css = files.filter((f) => f.endsWith('.css'));
  const sum = async (list: string[]) => (await Promise.all(list.map(gzipped))).reduce((a, b) => a + b, 0);
  const { js: editorJs, css: editorCss } = await editorFiles();
  console.log(
    `${'console JavaScript, first visit (gzipped)'.padEnd(46)} ${fmt((await sum(js)) / 1024, 1).padStart(10)} KB   goal: ≤ 200 KB`,
  );
  console.log(`${'console CSS, first visit (gzipped)'.padEnd(46)} ${fmt((await sum(css)) / 1024, 1).padStart(10)} KB`);
  console.log(
    `${'template editor: Monaco + its CSS (gzipped)'.padEnd(46)} ${fmt((await sum([editorJs, editorCss])) / 1024, 1).padStart(10)} KB   editor page only`,
  );
}

async function editorFiles(): Promise<{ js: string; css: string }> {
  const names = await readdir(join(consoleRoot, 'assets', 'editor'));
  const pick = (ext: string) => `assets/editor/${names.find((n) => n.endsWith(ext)) ?? ''}`;
  return { js: pick('.js'), css: pick('.css') };
}

interface Deployment {
  apiUrl: string;
  token: string;
  call<T>(method: string, path: string, body?: unknown, yaml?: string): Promise<T>;
}

/** A raw client: a ticket, then the job's stream; resolves at its first line (ms since epoch) and at its end. */
async function rawClient(d: Deployment, gatewayUrl: string, jobId: string) {
  const { ticket } = await d.call<{ ticket: string }>('POST', '/v1/stream-tickets', { jobId });
  const socket = new WebSocket(`${gatewayUrl}/v1/jobs/${jobId}/stream?ticket=${ticket}&from=0`);
  let firstLine = 0;
  let lines = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { type: string };
      if (message.type === 'line') {
        lines++;
        firstLine ||= Date.now();
      }
      if (message.type === 'end') resolve();
    });
    socket.on('error', reject);
  });
  socket.close();
  return { firstLine, ended: Date.now(), lines };
}

/** The job page's first log row on screen, as the page's own clock (ms since epoch) says. */
async function firstRowOnScreen(page: Page, jobId: string): Promise<number> {
  return page.evaluate(
    (id) =>
      new Promise<number>((resolve) => {
        const seen = () => document.querySelector('.log-line') !== null;
        const observer = new MutationObserver(() => {
          if (seen()) {
            observer.disconnect();
            requestAnimationFrame(() => resolve(Date.now()));
          }
        });
        observer.observe(document.body, { childList: true, subtree: true });
        location.hash = `#/jobs/${id}`;
      }),
    jobId,
  );
}

export async function consoleBench(): Promise<void> {
  console.log('\n== console (ours vs raw, same run) ==');
  await sizes();
  const dataDir = await mkdtemp(join(tmpdir(), 'pds-console-bench-'));
  await chmod(dataDir, 0o711); // jobs run as their slot's uid and must reach their folders
  benchStep('starting the embedded default');
  const deployment = await startLocalDeployment({ ...process.env, LOG_LEVEL: 'warn' }, () => undefined, { dataDir });
  const browser = await launchChromium();
  const mongo = await connectMongo(deployment.env.MONGO_URL as string);
  try {
    const token = deployment.env.ADMIN_TOKEN as string;
    const d: Deployment = { apiUrl: deployment.apiUrl, token, call: apiCaller(deployment.apiUrl, token) };
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.addInitScript(() => {
      const w = window as unknown as { longTasks: number[] };
      w.longTasks = [];
      new PerformanceObserver((list) => list.getEntries().forEach((e) => w.longTasks.push(e.duration))).observe({
        type: 'longtask',
        buffered: true,
      });
    });
    await page.goto(`${deployment.apiUrl}/console/#/jobs`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();

    // 1. A job's first line on screen, against a raw client started at the same moment.
    const resource = await d.call<{ id: string }>(
      'POST',
      '/v1/resources',
      undefined,
      manifest('console-bench', join(dataDir, 'files', 'bench')),
    );
    const rounds = sized(5, 1);
    const ours: number[] = [];
    const raw: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      benchStep(`first line, round ${i} of ${rounds}`);
      const created = Date.now();
      const job = await d.call<{ id: string }>('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'preview' });
      const [onScreen, client] = await Promise.all([firstRowOnScreen(page, job.id), rawClient(d, deployment.gatewayUrl, job.id)]);
      ours.push(onScreen - created);
      raw.push(client.firstLine - created);
      await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
    }
    row('job created → first line on screen (p50, ms)', percentile(ours, 50), percentile(raw, 50), 'ms', '≤ 1.5× the raw client');

    // 2. A 100,000-line log: the longest task while it loads, scrolls and searches.
    benchStep('a 100,000-line log');
    const count = sized(100_000, 5_000);
    const job = await d.call<{ id: string }>('POST', `/v1/resources/${resource.id}/jobs`, { operation: 'preview' });
    const models = createModels(mongo);
    const started = Date.now();
    while ((await d.call<{ status: string }>('GET', `/v1/jobs/${job.id}`)).status !== 'succeeded') {
      if (Date.now() - started > 60_000) throw new Error('the preview did not end');
      await new Promise((r) => setTimeout(r, 200));
    }
    const long = await lengthenJobLog(models, job.id, count);
    const everything = `${long.textLines.toLocaleString('en-US')} lines`;
    await page.evaluate(() => ((window as unknown as { longTasks: number[] }).longTasks = []));
    const opened = Date.now();
    const [client] = await Promise.all([
      rawClient(d, deployment.gatewayUrl, job.id),
      page.evaluate((id) => (location.hash = `#/jobs/${id}`), job.id),
    ]);
    await page.waitForFunction((text) => document.querySelector('.log-bar .muted')?.textContent === text, everything, { timeout: 120_000 });
    const allIn = Date.now() - opened;
    await page.locator('.log-box').evaluate((box) => (box.scrollTop = box.scrollHeight / 2));
    await page.getByPlaceholder('Search the log').fill(`needle-${Math.ceil((long.first + count / 2) / 97) * 97}`);
    await page.getByText('1 of 1').waitFor();
    await page.waitForTimeout(200);
    const tasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);
    row(
      `${count.toLocaleString('en-US')}-line log: every line in (ms)`,
      allIn,
      client.ended - opened,
      'ms',
      'no gap; as fast as the raw client',
    );
    console.log(
      `${`${count.toLocaleString('en-US')}-line log: longest task (ms)`.padEnd(46)} ${fmt(Math.max(0, ...tasks), 0).padStart(10)} ms       ${tasks.length} tasks over 50 ms   goal: none over 100 ms`,
    );
  } finally {
    await browser.close();
    await mongo.close();
    await deployment.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
