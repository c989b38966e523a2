import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleCredentials, testIsolation } from '@pds/devkit';
import { stackBackend } from '@pds/runner';
import t from 'tap';
import { stringify } from 'yaml';
import { createResource, queueJob, startStack, waitForJob } from './harness.js';

/**
 * A job is a room of its own, proven with the real CLI: a hostile program (fixtures/hostile-probe)
 * runs beside a victim job of the same kind and tries to read the runner's environment, the
 * victim's credential file and workspace, the victim's stack state, and to write outside its own
 * folders. With RUNNER_ISOLATION=uid every attempt gets EACCES, and the program's own home is
 * writable; the outputs say what each attempt got.
 */
t.test('a hostile program reaches nothing that is not its own', { skip: testIsolation().why }, async (t) => {
  // The probe kind lives beside the compiled tests, so its program resolves @pulumi/pulumi from the repository.
  const modules = fileURLToPath(new URL('../hostile-modules/', import.meta.url));
  const kindDir = join(modules, 'HostileProbe');
  await mkdir(kindDir, { recursive: true });
  await writeFile(join(kindDir, 'Pulumi.yaml'), 'name: hostile-probe\nruntime: nodejs\nmain: ../../test/fixtures/hostile-probe.js\n');
  await writeFile(join(kindDir, 'module.yaml'), 'provider: gcp\ndescription: test-only hostile program\n');
  await writeFile(join(kindDir, 'package.json'), '{ "private": true }\n');

  const stack = await startStack(t, { MODULES_DIR: modules, RUNNER_ISOLATION: 'uid' });
  t.equal(stack.runner.isolation, 'uid', 'the runner isolates jobs');
  const gcp = sampleCredentials().gcp;
  const credential = await stack.api.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: stack.auth,
    payload: { name: 'probe', provider: 'gcp', ...gcp.fields },
  });
  t.equal(credential.statusCode, 201);
  const manifest = (name: string, spec: Record<string, unknown>) =>
    stringify({ apiVersion: 'deploy.pulumi.dev/v1', kind: 'HostileProbe', metadata: { name }, spec });

  const victim = await createResource(stack, manifest('victim', { mode: 'victim', holdMs: 20_000 }));
  const victimJob = await queueJob(stack, victim.id);
  const work = stack.config.WORK_DIR;
  const victimSecrets = join(work, 'secrets', victimJob.id);
  const victimWorkspace = join(work, 'jobs', victimJob.id);
  // The victim is running once its credential file and workspace exist (seen as the runner sees them).
  for (let i = 0; i < 300 && !(await stat(join(victimSecrets, 'gcp-key.json')).catch(() => undefined)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await waitForJob(stack.models, victimJob.id, (d) => d.status === 'running');
  const stateRoot = fileURLToPath(stack.config.PULUMI_BACKEND_URL);
  const victimState = stackBackend(stack.config.PULUMI_BACKEND_URL, victim.stackFqdn).dir as string;

  const attacker = await createResource(
    stack,
    manifest('attacker', {
      mode: 'attack',
      read: {
        "victim's credential file": join(victimSecrets, 'gcp-key.json'),
        "victim's workspace Pulumi.yaml": join(victimWorkspace, 'Pulumi.yaml'),
        "victim's stack state": join(victimState, '.pulumi', 'meta.yaml'),
        "runner's environ": `/proc/${process.pid}/environ`,
      },
      list: {
        'credential folders': join(work, 'secrets'),
        "victim's credential folder": victimSecrets,
        "victim's workspace": victimWorkspace,
        'job folders': join(work, 'jobs'),
        "victim's stack state": victimState,
      },
      write: {
        'into WORK_DIR': join(work, 'pwned'),
        "into the victim's workspace": join(victimWorkspace, 'pwned'),
        'into the state root': join(stateRoot, 'pwned'),
        'into the modules': join(kindDir, 'pwned'),
      },
    }),
  );
  const attack = await queueJob(stack, attacker.id);
  const done = await waitForJob(stack.models, attack.id, (d) => d.status !== 'queued' && d.status !== 'running', 120_000);
  t.equal(done.status, 'succeeded', String(done.error ?? ''));
  // Read as a user would, through the API: the attempts are keyed by names that hold dots.
  const read = await stack.api.inject({ method: 'GET', url: `/v1/jobs/${attack.id}`, headers: stack.auth });
  const outputs = read.json().result.outputs as {
    attempts?: Record<string, string>;
    uid?: number;
    home?: string;
    lingeringPid?: number;
    leftFiles?: string[];
  };
  const attempts = Object.entries(outputs.attempts ?? {});
  t.comment(`hostile attempts: ${attempts.map(([what, got]) => `${what}: ${got}`).join('; ')}`);
  t.ok(attempts.length >= 17, `${attempts.length} attempts made`);
  t.ok(
    attempts.some(([what]) => what.includes('.')),
    'output keys holding dots are kept',
  );
  for (const [what, got] of attempts) {
    if (what === 'write own home') t.equal(got, 'ok', 'its own home is writable (the control)');
    else if (what.startsWith('leave ')) t.equal(got, 'ok', `${what}: ok (removed after the job)`);
    else t.equal(got, 'EACCES', `${what}: EACCES`);
  }
  t.ok(outputs.uid !== undefined && outputs.uid >= stack.config.RUNNER_UID_BASE, `ran as a slot uid (${outputs.uid}), not the runner's`);
  // Nothing of the job waits in its slot for the next one: no process of its uid, nothing in its home.
  t.ok(outputs.lingeringPid, 'the program left a process behind');
  t.notOk(await aliveAs(outputs.lingeringPid!, outputs.uid!), 'the process it left behind is gone');
  t.same((await readdir(outputs.home!).catch(() => ['missing'])).sort(), ['pulumi-home', 'tmp'], 'its home holds nothing it put there');
  t.same(await readdir(join(outputs.home!, 'pulumi-home')), [], 'nor does its Pulumi home');
  for (const file of outputs.leftFiles ?? []) t.notOk(await stat(file).catch(() => undefined), `${file} is gone`);
  t.equal(outputs.leftFiles?.length, 2);
  const victimDone = await waitForJob(stack.models, victimJob.id, (d) => d.status !== 'running', 60_000);
  t.equal(victimDone.status, 'succeeded', 'the victim ran to its end');
});

/** Whether process `pid` still runs as `uid` (a zombie waiting to be reaped runs nothing). */
async function aliveAs(pid: number, uid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const state = /^State:\s+(\S)/m.exec(status)?.[1];
  const realUid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  return state !== undefined && state !== 'Z' && state !== 'X' && realUid === uid;
}
