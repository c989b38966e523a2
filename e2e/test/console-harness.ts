/** What the console's browser tests share: the services with the console served, and a real Chromium. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { freePort, launchChromium as launch } from '@pds/devkit';
import type { Config } from '@pds/shared';
import type { Browser, Page } from 'playwright-core';
import type { Test } from 'tap';
import { startStack, TOKEN } from './harness.js';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The services, the API listening with the console, and browsers told where the gateway is. */
export async function servicesForConsole(t: Test, overrides: Partial<Config> = {}) {
  const gatewayPort = await freePort();
  const stack = await startStack(t, { CONSOLE_GATEWAY_URL: `ws://127.0.0.1:${gatewayPort}`, ...overrides }, { gatewayPort });
  await stack.api.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(stack.api.server.address() as { port: number }).port}`;
  return { stack, apiUrl, consoleUrl: `${apiUrl}/console/` };
}

/** Debian's Chromium, closed with the test. */
export async function launchChromium(t: Test): Promise<Browser> {
  const browser = await launch();
  t.teardown(() => browser.close());
  return browser;
}

/**
 * A page that records what should never happen: an uncaught error, a Content-Security-Policy
 * violation, a request to another origin than the API's and the gateway's.
 */
export async function consolePage(browser: Browser, origins: string[], viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  // A step that cannot happen fails within this, naming itself, rather than at the file's timeout.
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'data:' || url.protocol === 'blob:') return;
    if (!origins.includes(url.origin.replace(/^ws/, 'http'))) problems.push(`request to another origin: ${request.url()}`);
  });
  return { page, context, problems };
}

export async function signIn(page: Page, consoleUrl: string, token = TOKEN, hash = '#/jobs'): Promise<void> {
  await page.goto(`${consoleUrl}${hash}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * axe-core on the page as it is (evaluated through the browser's protocol, which the page's
 * Content-Security-Policy does not govern): the serious and critical violations.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = (await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: unknown[] }> } }).axe;
    return (await axe.run(document, { resultTypes: ['violations'] })).violations;
  })) as AxeViolation[];
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
