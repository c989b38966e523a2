/**
 * The template editor in a real Chromium against the real services: a new template opens in Monaco
 * with a program to start from, completion knows @pulumi/pulumi (the runtime packages' declarations),
 * a publish of a program that does not compile shows which check failed and where, the fixed one
 * publishes through every check (a real smoke preview) and deploys from its generated form.
 */
import t from 'tap';
import { axeViolations, consolePage, launchChromium, servicesForConsole, signIn } from './console-harness.js';
import { TOKEN } from './harness.js';

const { stack, apiUrl, consoleUrl } = await servicesForConsole(t);
const browser = await launchChromium(t);
const origins = [apiUrl, stack.gatewayUrl.replace(/^ws/, 'http')];

t.test('write, publish and deploy a template from the editor', async (t) => {
  const { page, problems } = await consolePage(browser, origins);
  await signIn(page, consoleUrl, TOKEN, '#/templates');
  await page.getByLabel('Name (the kind manifests name)').fill('Greeter');
  await page.getByRole('button', { name: 'Create and edit' }).click();
  await page.getByRole('heading', { name: /Greeter · editor/ }).waitFor();
  const editor = page.locator('.editor-main .monaco-editor');
  await editor.waitFor({ timeout: 60_000 });
  // Monaco draws spaces as no-break spaces.
  t.match(
    (await editor.textContent())?.replace(/\u00a0/g, ' '),
    /import \* as pulumi from '@pulumi\/pulumi'/,
    'Monaco holds the program to start from',
  );

  // Completion from the runtime packages' declarations.
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.type('pulumi.outp', { delay: 50 });
  const suggestion = page.locator('.editor-main .suggest-widget .monaco-list-row', { hasText: /^output/ });
  await suggestion.first().waitFor({ timeout: 60_000 });
  t.pass('completion offers pulumi.output');
  await page.keyboard.press('Escape');
  for (let i = 0; i < 'pulumi.outp'.length; i++) await page.keyboard.press('Backspace');
  // Typed with no pause between keys: the page's copy lags the editor's by a render, and must never
  // be pushed back over it (that undid keys, and the two fought until the page hung).
  await page.keyboard.type("const wrong: number = 'five';");

  await page.getByRole('button', { name: 'Publish' }).click();
  const checks = page.getByRole('list', { name: 'Publish checks' });
  await checks.locator('li.check-failed').waitFor({ timeout: 60_000 });
  t.match(await checks.locator('li.check-failed').textContent(), /The program compiles/, 'the failing check is named');
  t.match(
    await page.locator('.banner.bad').textContent(),
    /index\.ts:\d+:\d+: Type 'string' is not assignable to type 'number'/,
    'with file:line:col',
  );
  t.equal(await checks.locator('li.check-passed').count(), 4, 'the four checks before it passed');
  t.same(await axeViolations(page), [], 'axe: the editor');

  // Fix it: delete the wrong line (the cursor is on it).
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Control+Shift+K');
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.getByText('Greeter 1.0.0 is published').waitFor({ timeout: 120_000 });
  t.equal(await checks.locator('li.check-passed').count(), 6, 'every check passed, the smoke preview last');
  const version = (await (
    await fetch(`${apiUrl}/v1/templates/Greeter/versions/1.0.0`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json()) as {
    state: string;
    files: { content: string }[];
  };
  t.equal(version.state, 'published');
  t.notMatch(version.files[0]?.content, /wrong/, 'what was published is what the editor held');

  // Deploy it from its generated form.
  await page.getByRole('link', { name: 'Greeter', exact: true }).click();
  await page.getByLabel('Name').first().fill('hello-editor');
  await page.getByLabel('greeting').fill('hello from Monaco');
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  await page.getByRole('heading', { name: /up hello-editor/ }).waitFor();
  await page.locator('.page-head .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
  t.match(await page.locator('table.outputs').textContent(), /hello from Monaco/, 'its output');
  t.same(problems, [], 'no page error, no policy violation (Monaco and its workers included), nothing remote');
});
