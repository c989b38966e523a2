/** `pds templates`: init, push, publish through the API's real checks, then a resource of it deployed. */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { BIN, servicesForCli } from './cli-harness.js';

t.test('pds templates: init, push, publish (its checks run for real), then deploy a resource of it', async (t) => {
  const { work, env } = await servicesForCli(t, 'pds-cli-templates-');
  const pds = (...args: string[]) => execa(process.execPath, [BIN, ...args], { env, extendEnv: false, reject: false });
  const dir = join(work, 'greeter');

  let run = await pds('templates', 'init', dir, '--name', 'Greeter');
  t.equal(run.exitCode, 0, run.stderr);
  run = await pds('templates', 'push', dir);
  t.equal(run.exitCode, 0, `push: ${run.stderr}`);
  t.match(run.stdout, /made template Greeter, pushed Greeter 0\.1\.0 \(draft\)/);
  run = await pds('templates', 'push', dir);
  t.equal(run.exitCode, 0, 'pushed again: the draft replaced');
  t.match(run.stdout, /replaced the draft Greeter 0\.1\.0/);
  run = await pds('templates', 'publish', 'Greeter', '0.1.0');
  t.equal(run.exitCode, 0, `publish: ${run.stderr.slice(-400)}`);
  t.match(run.stdout, /published Greeter 0\.1\.0/);
  run = await pds('templates', 'push', dir);
  t.equal(run.exitCode, 2, 'a published version is not replaced: exit 2');
  t.match(run.stderr, /409/);

  // A broken version is refused at publish, the check named.
  await writeFile(join(dir, 'template.yaml'), readFileSync(join(dir, 'template.yaml'), 'utf8').replace('version: 0.1.0', 'version: 0.1.1'));
  await writeFile(join(dir, 'index.ts'), `${readFileSync(join(dir, 'index.ts'), 'utf8')}\nconst wrong: number = 'five';\n`);
  t.equal((await pds('templates', 'push', dir)).exitCode, 0);
  run = await pds('templates', 'publish', 'Greeter', '0.1.1');
  t.equal(run.exitCode, 2, 'a version that does not compile: exit 2');
  t.match(run.stderr, /five|not assignable|compile/i, 'the check that failed is named');

  const manifest = join(work, 'hello.yaml');
  await writeFile(manifest, 'apiVersion: deploy.pulumi.dev/v1\nkind: Greeter\nmetadata:\n  name: hello\nspec:\n  greeting: hi\n');
  run = await pds('deploy', '-f', manifest, '--follow');
  t.equal(run.exitCode, 0, `a resource of the published template deploys (${run.stderr.slice(-400)})`);
  t.match(run.stdout, /✓ create pulumi-nodejs:dynamic:Resource note/);
  run = await pds('templates', 'show', 'Greeter', '-o', 'json');
  t.match(JSON.parse(run.stdout), { name: 'Greeter', version: '0.1.0', schema: { required: ['greeting'] } });
});
