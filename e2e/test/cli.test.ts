/**
 * The `pds` CLI, built, run as a person or a CI job runs it, against the real services and the real
 * Pulumi CLI: login, deploy and follow, every exit code, `-o json`, errors that name the fix.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@pds/devkit';
import { execa } from 'execa';
import t from 'tap';
import { BIN } from './cli-harness.js';
import { fileSetManifest, startStack, TOKEN } from './harness.js';

t.test('pds: login, deploy and follow, and an exit code for every outcome', async (t) => {
  // A cancelled job's Pulumi gets 2 s to stop, not 30: the test waits on it.
  const stack = await startStack(t, { CANCEL_GRACE_SECONDS: 2 });
  await stack.api.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(stack.api.server.address() as { port: number }).port}`;
  const gatewayUrl = stack.gatewayUrl.replace(/^ws/, 'http');
  const home = await mkdtemp(join(tmpdir(), 'pds-cli-home-'));
  const work = await mkdtemp(join(tmpdir(), 'pds-cli-files-'));
  t.teardown(() => Promise.all([rm(home, { recursive: true, force: true }), rm(work, { recursive: true, force: true })]));
  const baseEnv = { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), NO_COLOR: '1' };
  const pds = (args: string[], options: { env?: Record<string, string>; input?: string } = {}) =>
    execa(process.execPath, [BIN, ...args], {
      env: { ...baseEnv, ...options.env },
      extendEnv: false,
      reject: false,
      input: options.input ?? '',
    });
  const manifestFile = async (name: string, text: string) => {
    const path = join(work, `${name}.yaml`);
    await writeFile(path, text);
    return path;
  };

  // Not logged in: an auth error that says what to do.
  let run = await pds(['jobs', 'ls']);
  t.equal(run.exitCode, 4, 'not logged in: exit 4');
  t.match(run.stderr, /not logged in: run `pds login/);

  // A token the service refuses is not saved.
  run = await pds(['login', '--with-token', apiUrl, '--gateway', gatewayUrl], { input: 'pds_not-a-token-of-this-service-0123456789' });
  t.equal(run.exitCode, 4, 'a refused token: exit 4');
  t.match(run.stderr, /the token was refused \(401/);
  t.notOk(existsSync(join(home, '.config/pds/credentials.json')), 'nothing saved');

  run = await pds(['login', '--with-token', apiUrl, '--gateway', gatewayUrl], { input: `${TOKEN}\n` });
  t.equal(run.exitCode, 0, `login: ${run.stderr}`);
  const saved = join(home, '.config/pds/credentials.json');
  t.equal((await stat(saved)).mode & 0o777, 0o600, 'the credentials file is its owner’s alone');
  t.equal((await stat(join(home, '.config/pds'))).mode & 0o777, 0o700);

  // Deploy and follow: a real up, one line per change, exit 0, the files there.
  const directory = join(work, 'out');
  const manifest = await manifestFile('files', fileSetManifest('cli-files', directory, [{ path: 'a.txt', content: 'from pds' }]));
  run = await pds(['deploy', '-f', manifest, '--follow']);
  t.equal(run.exitCode, 0, `deploy --follow: exit 0 (${run.stderr})`);
  t.match(run.stdout, /created LocalFileSet\/cli-files \(version 1\)/);
  t.match(run.stdout, /✓ create pulumi-nodejs:dynamic:Resource a\.txt/, 'the resource, as it was created');
  t.match(run.stdout, /summary .*created/);
  t.match(run.stderr, /job \S+ succeeded/);
  t.equal(readFileSync(join(directory, 'a.txt'), 'utf8'), 'from pds', 'the real up wrote the file');

  // Again: the same resource, updated; as JSON for a script.
  await writeFile(manifest, fileSetManifest('cli-files', directory, [{ path: 'a.txt', content: 'again' }]));
  run = await pds(['deploy', '-f', manifest, '-o', 'json']);
  t.equal(run.exitCode, 0);
  const deployed = JSON.parse(run.stdout) as {
    resource: { id: string; version: number; created: boolean };
    job: { id: string; status: string };
  };
  t.match(deployed, { resource: { version: 2, created: false }, job: { status: 'queued' } });
  run = await pds(['watch', deployed.job.id]);
  t.equal(run.exitCode, 0, 'watch: the job’s exit code');
  t.match(run.stdout, /✓ update pulumi-nodejs:dynamic:Resource a\.txt/);
  run = await pds(['watch', deployed.job.id]);
  t.equal(run.exitCode, 0, 'a job that had already ended: the same exit code');

  run = await pds(['jobs', 'show', deployed.job.id, '-o', 'json']);
  t.match(JSON.parse(run.stdout), { id: deployed.job.id, status: 'succeeded', operation: 'up' });
  run = await pds(['jobs', 'show', deployed.job.id]);
  t.match(run.stdout, /^status:\s+succeeded$/m);
  t.match(run.stdout, /^changes:\s+1 updated, 1 unchanged$/m);
  run = await pds(['jobs', 'ls', '-o', 'json']);
  t.ok(
    (JSON.parse(run.stdout) as { items: { id: string }[] }).items.some((job) => job.id === deployed.job.id),
    'jobs ls -o json',
  );
  run = await pds(['logs', deployed.job.id]);
  t.equal(run.exitCode, 0);
  t.match(run.stdout, /Updating \(/, "the job's stored lines");

  // Resources, their state and the templates, as a person reads them and as JSON.
  const resourceId = deployed.resource.id;
  run = await pds(['resources', 'ls', '--kind', 'LocalFileSet', '-o', 'json']);
  t.ok(
    (JSON.parse(run.stdout) as { items: { id: string }[] }).items.some((r) => r.id === resourceId),
    'resources ls -o json',
  );
  run = await pds(['resources', 'show', resourceId]);
  t.match(run.stdout, /^name:\s+cli-files$/m);
  t.match(run.stdout, /content: "again"/, 'its manifest');
  run = await pds(['state', 'show', resourceId]);
  t.match(run.stdout, /^state version 2$/m);
  t.match(run.stdout, /pulumi-nodejs:dynamic:Resource\s+a\.txt/);
  run = await pds(['state', 'versions', resourceId, '-o', 'json']);
  t.same(
    (JSON.parse(run.stdout) as { items: { version: number }[] }).items.map((v) => v.version),
    [2, 1],
  );
  run = await pds(['state', 'diff', resourceId]);
  t.match(run.stdout, /^from version 1 to 2$/m);
  t.match(run.stdout, /^~ \S+::a\.txt \(.*inputs\.content/m, 'a.txt changed, its content');
  run = await pds(['templates', 'ls']);
  t.match(run.stdout, /^LocalFileSet\s/m);
  run = await pds(['templates', 'show', 'LocalFileSet', '-o', 'json']);
  t.match(JSON.parse(run.stdout), { name: 'LocalFileSet', schema: { type: 'object' } });
  run = await pds(['state', 'show', randomUUID()]);
  t.equal(run.exitCode, 2, 'an unknown resource: exit 2');

  // A program that fails: exit 1, and the error said.
  const failing = await manifestFile(
    'fail',
    fileSetManifest('cli-fail', join(work, 'fail'), [{ path: 'a.txt', content: 'x' }]).replace('path: "a.txt"', 'path: "../outside.txt"'),
  );
  run = await pds(['deploy', '-f', failing, '--follow']);
  t.equal(run.exitCode, 1, `a failed job: exit 1 (${run.stderr.slice(-300)})`);
  t.match(run.stderr, /job \S+ failed/);

  // Cancelled: exit 3.
  const slow = await manifestFile(
    'slow',
    fileSetManifest('cli-slow', join(work, 'slow'), [{ path: 'a.txt', content: 'x', delayMs: 60_000 }]),
  );
  run = await pds(['deploy', '-f', slow, '-o', 'json']);
  const slowJob = (JSON.parse(run.stdout) as { job: { id: string } }).job.id;
  run = await pds(['cancel', slowJob, '--wait']);
  t.equal(run.exitCode, 3, `cancel --wait of a job: exit 3 (${run.stderr.slice(-300)})`);
  run = await pds(['watch', slowJob]);
  t.equal(run.exitCode, 3, 'watching a cancelled job: exit 3');

  // Usage and manifest errors: exit 2, naming the field or the fix.
  run = await pds(['deploy', '-f', join(work, 'missing.yaml')]);
  t.equal(run.exitCode, 2);
  t.match(run.stderr, /cannot read .*missing\.yaml: no such file/);
  const nameless = await manifestFile('nameless', 'apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nspec: {}\n');
  run = await pds(['deploy', '-f', nameless]);
  t.equal(run.exitCode, 2);
  t.match(run.stderr, /metadata\.name is missing/);
  const refused = await manifestFile(
    'refused',
    fileSetManifest('cli-refused', directory, []).replace('files: []', 'files: []\n  colour: blue'),
  );
  run = await pds(['deploy', '-f', refused]);
  t.equal(run.exitCode, 2, 'a manifest the API refuses: exit 2');
  t.match(run.stderr, /colour/, 'naming the field');
  run = await pds(['watch', randomUUID()]);
  t.equal(run.exitCode, 2, 'an unknown job: exit 2');
  t.match(run.stderr, /not found/);
  run = await pds(['logs', 'x', '--since-seq', '-3']);
  t.equal(run.exitCode, 2);
  t.match(run.stderr, /--since-seq must be a whole number/);
  run = await pds(['deploy']);
  t.equal(run.exitCode, 2, 'a missing option: exit 2');
  t.match(run.stderr, /required option '-f, --file <manifest>'/);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');

  // The environment wins over the saved login; the saved token never goes to another PDS_URL.
  const nowhere = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  run = await pds(['jobs', 'ls'], { env: { PDS_TOKEN: 'pds_revoked-or-wrong-0123456789abcdefghijkl' } });
  t.equal(run.exitCode, 4, 'PDS_TOKEN wins (a wrong one: exit 4)');
  run = await pds(['jobs', 'ls'], { env: { PDS_URL: nowhere } });
  t.equal(run.exitCode, 4, 'another PDS_URL without PDS_TOKEN: not logged in there');
  t.match(run.stderr, /not logged in/);
  run = await pds(['jobs', 'ls'], { env: { PDS_TOKEN: `${TOKEN}\nX-Injected: 1` } });
  t.equal(run.exitCode, 4, 'a token with a line break: refused before it is sent');
  t.notMatch(run.stderr, new RegExp(TOKEN), 'and not printed');
  run = await pds(['jobs', 'ls'], { env: { PDS_URL: nowhere, PDS_TOKEN: TOKEN } });
  t.equal(run.exitCode, 1, 'an API that cannot be reached: exit 1');
  t.match(run.stderr, `cannot reach the API at ${nowhere}: ECONNREFUSED`);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  run = await pds(['logout']);
  t.equal(run.exitCode, 0);
  t.notOk(existsSync(saved));
});
