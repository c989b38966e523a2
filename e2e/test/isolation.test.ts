import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleCredentials, testIsolation } from '@pds/devkit';
import { stackBackend } from '@pds/runner';
import { stackKeyOf } from '@pds/shared';
import t from 'tap';
import { stringify } from 'yaml';
import { createResource, queueJob, startStack, waitForJob } from './harness.js';
import { startTestHost } from './test-host.js';

/** The probe kind lives beside the compiled tests, so its program resolves @pulumi/pulumi from the repository. */
async function probeModules(): Promise<{ modules: string; kindDir: string }> {
  const modules = fileURLToPath(new URL('../hostile-modules/', import.meta.url));
  const kindDir = join(modules, 'HostileProbe');
  await mkdir(kindDir, { recursive: true });
  await writeFile(join(kindDir, 'Pulumi.yaml'), 'name: hostile-probe\nruntime: nodejs\nmain: ../../test/fixtures/hostile-probe.js\n');
  await writeFile(join(kindDir, 'module.yaml'), 'provider: gcp\ndescription: test-only hostile program\n');
  await writeFile(join(kindDir, 'package.json'), '{ "private": true }\n');
  return { modules, kindDir };
}

const manifest = (name: string, spec: Record<string, unknown>) =>
  stringify({ apiVersion: 'deploy.pulumi.dev/v1', kind: 'HostileProbe', metadata: { name }, spec });

/** The probe kind's provider is gcp: a default gcp credential for its jobs in `tenant` (answers the status). */
async function addProbeCredential(stack: Awaited<ReturnType<typeof startStack>>, tenant = 'default'): Promise<number> {
  const gcp = sampleCredentials().gcp;
  const credential = await stack.api.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: stack.auth,
    payload: { name: 'probe', provider: 'gcp', tenant, ...gcp.fields },
  });
  return credential.statusCode;
}

/** The victims are another tenant's: the tenant beside the attacker's, with its own gcp credential. */
const VICTIMS = 'victims';

async function addVictimTenant(stack: Awaited<ReturnType<typeof startStack>>): Promise<number> {
  const created = await stack.api.inject({ method: 'POST', url: '/v1/tenants', headers: stack.auth, payload: { name: VICTIMS } });
  return created.statusCode === 201 ? addProbeCredential(stack, VICTIMS) : created.statusCode;
}

/** The TCP ports listening on this machine's loopback or every address (from /proc/net/tcp, as the runner sees it). */
async function loopbackListeners(): Promise<number[]> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const [, local = '', , state] = line.trim().split(/\s+/);
      const [address = '', port = ''] = local.split(':');
      if (state !== '0A') continue; // LISTEN
      if (!/^(0100007F|00000000|0+|0+10+|00000000000000000000000001000000)$/.test(address)) continue;
      ports.add(Number.parseInt(port, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** The language address of the running `pulumi up` whose command line names it (the victim's program host), once it runs. */
async function programHostAddress(): Promise<string | undefined> {
  for (let look = 0; look < 300; look++) {
    for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
      const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      const at = args.indexOf('--client');
      if (at > 0 && args.includes('up') && !args.includes('--')) return args[at + 1];
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}

/** The processes of the machine whose command line holds `marker`. */
async function processesMarked(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(pid));
  }
  return found;
}

/** Refusals a sandboxed job's connection gets: prohibited route (EACCES), no route, nothing listening in its own namespace. */
const REFUSED = ['EACCES', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNREFUSED', 'timeout'];

/**
 * A job is a room of its own, proven with the real CLI: a hostile program (fixtures/hostile-probe)
 * runs beside a victim job of another tenant and tries to read the runner's environment, the
 * victim's credential file and workspace, the victim's stack state, to write outside its own
 * folders, and (sandboxed) to connect to the service's stores, every port listening on the
 * machine's loopback, the victim's program host, the cloud metadata address and private ranges.
 * Every attempt fails (EACCES, or ENOENT where the folder is not mounted at all); its own home is
 * writable and the one range the operator allowed is reached (the controls).
 */
t.test('a hostile program reaches nothing that is not its own', { skip: testIsolation().why }, async (t) => {
  const { modules, kindDir } = await probeModules();
  const sandboxed = testIsolation().isolation === 'sandbox';
  const testHost = sandboxed ? await startTestHost(t, 7) : undefined;
  const stack = await startStack(t, { MODULES_DIR: modules, ...(testHost ? { JOB_EGRESS_ALLOW: `${testHost.address}/32` } : {}) });
  t.equal(stack.runner.isolation, testIsolation().isolation, 'the runner isolates jobs');
  t.equal(await addProbeCredential(stack), 201, 'the probe kind has its gcp credential');
  t.equal(await addVictimTenant(stack), 201, 'the victim is another tenant, with a gcp credential of its own');
  const victim = await createResource(stack, manifest('victim', { mode: 'victim', holdMs: 20_000 }), VICTIMS);
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
  const victimState = stackBackend(stack.config.PULUMI_BACKEND_URL, stackKeyOf(VICTIMS, victim.stackFqdn)).dir as string;
  const marker = `pds-probe-linger-${victimJob.id}`;
  const connect: Record<string, string> = {};
  if (sandboxed) {
    const redis = new URL(stack.config.REDIS_URL);
    const store = new URL(stack.config.MONGO_URL);
    connect["the service's Redis"] = `${redis.hostname}:${redis.port}`;
    connect["the service's store"] = `${store.hostname}:${store.port}`;
    connect['the gateway'] = new URL(stack.gatewayUrl).host;
    for (const port of await loopbackListeners()) connect[`loopback port ${port}`] = `127.0.0.1:${port}`;
    const victimHost = await programHostAddress();
    t.ok(victimHost, `the victim's program host listens at ${victimHost}`);
    if (victimHost) connect["the victim's program host"] = victimHost;
    connect['the cloud metadata address'] = '169.254.169.254:80';
    // slirp4netns forwards its DNS address to the runner's name server, and its gateway to the runner's loopback.
    connect["the DNS forwarder's address, on Redis's port"] = `10.0.2.3:${redis.port}`;
    connect["the DNS forwarder's address, on port 80"] = '10.0.2.3:80';
    connect["the gateway's address, on Redis's port"] = `10.0.2.2:${redis.port}`;
    connect['a private address'] = '10.214.0.1:8080';
    connect["the machine's address on the test network"] = `${testHost?.machineSide}:8080`;
    connect['the allowed test host'] = `${testHost?.address}:${testHost?.port}`;
  }

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
      connect,
      marker,
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
  const connects = attempts.filter(([what]) => what.startsWith('connect '));
  const others = attempts.filter(([what]) => !what.startsWith('connect '));
  t.comment(`hostile attempts: ${attempts.map(([what, got]) => `${what}: ${got}`).join('; ')}`);
  t.ok(others.length >= 18, `${others.length} attempts on files and processes made`);
  if (sandboxed) t.ok(connects.length >= 8, `${connects.length} connections tried`);
  for (const [what, got] of connects) {
    if (what === 'connect the allowed test host')
      t.equal(got, 'open: hello from the test host', `${what}: reached (the allowed range, the control)`);
    else t.ok(REFUSED.includes(got), `${what}: refused (${got})`);
  }
  for (const what of ['the cloud metadata address', 'a private address', "the machine's address on the test network"]) {
    if (sandboxed) t.equal(outputs.attempts?.[`connect ${what}`], 'EACCES', `connect ${what}: EACCES (a prohibited route)`);
  }
  t.ok(
    attempts.some(([what]) => what.includes('.')),
    'output keys holding dots are kept',
  );
  // Sandboxed, another job's folders are not mounted at all, and the system is read-only.
  const notMounted = ["victim's workspace", "victim's stack state", 'job folders', "runner's environ"];
  for (const [what, got] of others) {
    if (what === 'leave a SysV shared memory segment') t.equal(got, 'ok', `${what}: ok (the namespace's, or, with uid, the machine's)`);
    else if (what === 'write own home') t.equal(got, 'ok', 'its own home is writable (the control)');
    else if (what.startsWith('leave ')) t.equal(got, 'ok', `${what}: ok (removed after the job)`);
    else if (sandboxed && notMounted.some((name) => what.endsWith(name) || what.endsWith(`${name} Pulumi.yaml`)))
      t.equal(got, 'ENOENT', `${what}: ENOENT (not there at all)`);
    else if (sandboxed && what === 'write into the modules') t.equal(got, 'EROFS', `${what}: EROFS (the system is read-only)`);
    else t.equal(got, 'EACCES', `${what}: EACCES`);
  }
  t.ok(outputs.uid !== undefined && outputs.uid >= stack.config.RUNNER_UID_BASE, `ran as a slot uid (${outputs.uid}), not the runner's`);
  // Nothing of the job waits in its slot for the next one: no process of its uid, nothing in its home.
  t.ok(outputs.lingeringPid, 'the program left a process behind');
  if (sandboxed) t.same(await processesMarked(marker), [], 'the process it left behind is gone');
  else t.notOk(await aliveAs(outputs.lingeringPid!, outputs.uid!), 'the process it left behind is gone');
  if (sandboxed) t.notMatch(await ipcSegments(), new RegExp(`\\b${outputs.uid}\\b`), "its shared memory segment was never the machine's");
  t.same((await readdir(outputs.home!).catch(() => ['missing'])).sort(), ['pulumi-home', 'tmp'], 'its home holds nothing it put there');
  t.same(await readdir(join(outputs.home!, 'pulumi-home')), [], 'nor does its Pulumi home');
  for (const file of outputs.leftFiles ?? []) t.notOk(await stat(file).catch(() => undefined), `${file} is gone`);
  t.equal(outputs.leftFiles?.length, 2);
  const victimDone = await waitForJob(stack.models, victimJob.id, (d) => d.status !== 'running', 60_000);
  t.equal(victimDone.status, 'succeeded', 'the victim ran to its end');
});

/** The machine's SysV shared memory segments with their owners (`ipcs -m`: a uid without a name shows as its number). */
async function ipcSegments(): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => execFile('ipcs', ['-m'], (_err, stdout) => resolve(String(stdout))));
}

/** Whether process `pid` still runs as `uid` (a zombie waiting to be reaped runs nothing). */
async function aliveAs(pid: number, uid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const state = /^State:\s+(\S)/m.exec(status)?.[1];
  const realUid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  return state !== undefined && state !== 'Z' && state !== 'X' && realUid === uid;
}

/**
 * Limits, proven with the real CLI: beside another tenant's victim job, three hostile jobs each exhaust one limit
 * of their sandbox (memory, processes, disk). Each ends alone, failed with the limit's reason; the
 * victim runs to its end with its usage shown; nothing of theirs is left; the runner runs the next job.
 */
t.test(
  'a job that exhausts a limit ends alone, with the limit as its reason',
  { skip: testIsolation().isolation === 'sandbox' ? false : 'the job sandbox is not available here' },
  async (t) => {
    const { modules } = await probeModules();
    const stack = await startStack(t, {
      MODULES_DIR: modules,
      RUNNER_CONCURRENCY: 4,
      JOB_MEMORY_MAX_MB: 512,
      JOB_PIDS_MAX: 256,
      JOB_DISK_MAX_MB: 64,
    });
    t.equal(await addProbeCredential(stack), 201);
    t.equal(await addVictimTenant(stack), 201, 'the victim is another tenant, with a gcp credential of its own');
    const victim = await createResource(stack, manifest('limits-victim', { mode: 'victim', holdMs: 15_000 }), VICTIMS);
    const victimJob = await queueJob(stack, victim.id);
    await waitForJob(stack.models, victimJob.id, (d) => d.status === 'running');
    const hostile: Record<string, string> = {};
    for (const mode of ['memory-hog', 'fork-bomb', 'disk-fill']) {
      const resource = await createResource(stack, manifest(mode, { mode }));
      hostile[mode] = (await queueJob(stack, resource.id)).id;
    }
    const ended = async (id: string) => {
      await waitForJob(stack.models, id, (d) => d.status !== 'queued' && d.status !== 'running', 120_000);
      return (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: stack.auth })).json();
    };
    const memory = await ended(hostile['memory-hog']!);
    t.equal(memory.status, 'failed');
    t.equal(memory.reason, 'memory_limit', `memory: ${memory.result?.error}`);
    t.match(memory.result?.error, /used all of its memory \(512 MiB\)/);
    const forks = await ended(hostile['fork-bomb']!);
    t.comment(`fork bomb: ${forks.status} ${forks.reason ?? ''} ${forks.result?.error ?? JSON.stringify(forks.result?.outputs)}`);
    if (forks.status === 'failed') t.equal(forks.reason, 'process_limit', 'the fork bomb failed at its process limit');
    else t.match(forks.result?.outputs?.forks, /^stopped: /, 'the fork bomb was stopped by its process limit');
    const disk = await ended(hostile['disk-fill']!);
    t.equal(disk.status, 'failed');
    t.equal(disk.reason, 'disk_limit', `disk: ${disk.result?.error}`);
    t.match(disk.result?.error, /more than its 64 MiB/);

    const victimDone = await ended(victimJob.id);
    t.equal(victimDone.status, 'succeeded', 'the victim ran to its end');
    t.equal(victimDone.usage?.limits?.memoryBytes, 512 * 1024 * 1024, "the victim's view shows its limits");
    t.ok(
      victimDone.usage?.peakMemoryBytes > 0 && victimDone.usage.peakMemoryBytes <= 512 * 1024 * 1024,
      `peak memory ${victimDone.usage?.peakMemoryBytes}`,
    );
    t.ok(victimDone.usage?.cpuSeconds > 0, `CPU time ${victimDone.usage?.cpuSeconds} s`);
    t.same(await processesMarked('sleep\u0000600'), [], 'nothing the fork bomb started is left');
    // The runner and its slots are whole: the next job runs.
    const after = await createResource(stack, manifest('after', { mode: 'victim', holdMs: 100 }));
    t.equal((await ended((await queueJob(stack, after.id)).id)).status, 'succeeded', 'the next job runs');
  },
);
