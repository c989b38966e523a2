import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createResource, queueJob, replaceResource, startStack, storedLines, waitForAudit, waitForJob } from './harness.js';

/** Every file under a folder, as text (the file state backend). */
async function textsUnder(dir: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  const texts = await Promise.all(
    entries.filter((e) => e.isFile()).map((e) => readFile(join(e.parentPath, e.name), 'utf8').catch(() => '')),
  );
  return texts.join('\n');
}

/**
 * With the real CLI: a template's `x-secret` parameter (LocalFileSet's `spec.secret`) reaches the
 * program as Pulumi secret config and nowhere else: not in the stored manifest or any response, not
 * in STACK_INPUT_YAML, a line, the job, or the stack state in clear.
 */
t.test('a secret parameter reaches the program as Pulumi secret config, and shows nowhere', async (t) => {
  const stack = await startStack(t);
  const secret = `s3cr3t-${randomUUID()}`;
  const directory = join(tmpdir(), `pds-secret-${randomUUID().slice(0, 8)}`);
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const manifest = (value: string) =>
    `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: vault\nspec:\n  directory: ${directory}\n  secret: ${value}\n  files:\n    - path: echo.txt\n      content: ${JSON.stringify(secret.slice(0, 6))}\n`;
  const resource = await createResource(stack, manifest(secret));
  const shown = (await stack.api.inject({ method: 'GET', url: `/v1/resources/${resource.id}`, headers: stack.auth })).json();
  t.equal(shown.spec.secret, '[secret]', 'the resource shows a placeholder');
  t.notMatch(JSON.stringify(shown), secret);
  const stored = await stack.models.Resource.findById(resource.id).lean<Record<string, unknown>>();
  t.notMatch(JSON.stringify(stored), secret, 'the stored document holds it sealed only');

  const up = await queueJob(stack, resource.id);
  const done = await waitForJob(stack.models, up.id, (j) => j.status !== 'queued' && j.status !== 'running', 120_000);
  t.equal(done.status, 'succeeded', done.error ?? '');
  t.equal(await readFile(join(directory, '.secret'), 'utf8'), secret, 'the program got the value');
  const lines = await storedLines(stack, up.id);
  t.ok(lines.length > 0);
  t.notMatch(JSON.stringify(lines), secret, 'no line or event holds it');
  t.notMatch(JSON.stringify(done), secret, 'nor the job (outputs, tails)');
  // The secret output (the secret file's hash): masked, and shown only to a tenant admin who asks.
  const hash = createHash('sha256').update(secret).digest('hex');
  const outputsUrl = `/v1/resources/${resource.id}/outputs`;
  const read = (token: string, query = '') =>
    stack.api.inject({ method: 'GET', url: `${outputsUrl}${query}`, headers: { authorization: `Bearer ${token}` } });
  const mint = async (role: string) =>
    (await stack.api.inject({ method: 'POST', url: '/v1/tokens', headers: stack.auth, payload: { name: role, role } })).json()
      .token as string;
  const [admin, deployer] = [await mint('admin'), await mint('deployer')];
  t.match((await read(deployer)).json(), { outputs: { secretSha256: '[secret]' } }, 'masked by default');
  const refused = await read(deployer, '?showSecrets=true');
  t.equal(refused.statusCode, 403);
  t.match(refused.json().message, /showSecrets: secret outputs are shown to the tenant's admins only/);
  const revealed = await read(admin, '?showSecrets=true');
  t.equal(revealed.statusCode, 200, revealed.body);
  t.match(revealed.json(), { outputs: { secretSha256: hash, secretFile: join(directory, '.secret') } }, 'shown to an admin who asks');
  t.equal(revealed.headers['cache-control'], 'no-store');
  const audited = await waitForAudit(stack.models, 'stack.outputs.reveal', resource.id, 2);
  t.same(audited.map((a) => a.outcome).sort(), ['failure', 'success'], 'both asks are audited');
  const version = await stack.models.StackState.findOne({ resourceId: resource.id }).sort({ seq: -1 }).lean();
  t.ok(version?.secretOutputs?.data, 'kept sealed with the state version');
  t.notMatch(JSON.stringify(version?.secretOutputs), hash);
  t.notMatch(JSON.stringify(await storedLines(stack, up.id)), hash, 'no line holds the revealed value');
  t.notMatch(JSON.stringify(done), hash);
  const state = await textsUnder(fileURLToPath(stack.config.PULUMI_BACKEND_URL));
  t.ok(state.length > 0);
  t.notMatch(state, secret, 'the stack state keeps it encrypted');

  // A PUT that sends the placeholder back keeps the value; a second up still has it.
  const replaced = await replaceResource(stack, resource.id, manifest('"[secret]"'));
  t.equal(replaced.version, 2);
  const again = await queueJob(stack, resource.id);
  t.equal(
    (await waitForJob(stack.models, again.id, (j) => j.status === 'succeeded' || j.status === 'failed', 120_000)).status,
    'succeeded',
  );
  t.equal(await readFile(join(directory, '.secret'), 'utf8'), secret, 'kept across a replace that did not give it');
  t.ok((await stat(join(directory, 'echo.txt'))).isFile());
});
