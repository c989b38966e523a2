import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { testIsolation } from '@pds/devkit';
import { testRedis } from '@pds/devkit/tap';
import { uidLeaseKey } from '@pds/shared';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { openPathTo, ownFolder } from '../src/isolation/ownership.js';
import { IsolationUnavailableError, prepareIsolation } from '../src/slots/prepare.js';
import { isolationProblem, SlotPool } from '../src/slots/slots.js';
import { resetSlot } from '../src/slots/slot-reset.js';
import { killProcessesOf, leaseUids, NoFreeUidError, processesOf } from '../src/isolation/uid-leases.js';
import { adoptSharedLayout, backendSeparatesTenants, stackBackend } from '../src/isolation/stack-state.js';

const UID = 61_990;

async function scratch(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pds-isolation-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o711); // slot uids pass through to what is theirs
  return dir;
}

t.test('each slot has a uid of its own, and a slot is free again once released', async (t) => {
  const pool = new SlotPool(2, [61_000, 61_001]);
  const [a, b] = [pool.acquire()!, pool.acquire()!];
  t.same(
    [a.identity, b.identity],
    [
      { uid: 61_000, gid: 61_000 },
      { uid: 61_001, gid: 61_001 },
    ],
  );
  t.equal(pool.acquire(), undefined, 'none free: no slot');
  pool.release(a);
  t.same(pool.acquire(), a);
  pool.release(b);
  pool.release(a);
  t.same(pool.acquire(), a, 'the slot released last goes first (its program host is the warm one)');
  t.same(pool.acquire(), b);
  t.same(new SlotPool(1, undefined).acquire(), { index: 0 }, 'without isolation a slot has no uid');
});

t.test('runners on one machine lease disjoint uids; a dead holder frees its uids', async (t) => {
  const base = 62_500; // a range no runner of the other tests uses
  const first = await leaseUids(base, 3, 2);
  const second = await leaseUids(base, 3, 1);
  t.same([first.uids, second.uids], [[base, base + 1], [base + 2]]);
  const refused = await leaseUids(base, 3, 1).catch((err: Error) => err);
  t.type(refused, NoFreeUidError);
  t.match((refused as Error).message, /only 0 of the 1 slot uids needed are free in 62500..62502.*RUNNER_UID_COUNT/);
  await first.release();
  const again = await leaseUids(base, 3, 2);
  t.same(again.uids, [base, base + 1], 'released uids are free again');
  await Promise.all([again.release(), second.release()]);

  // Another process holds a uid until it dies; the kernel frees the lease with it.
  const holder = spawn(
    process.execPath,
    ['-e', `require('node:net').createServer().listen('\\0pds-runner-uid-${base}', () => console.log('held'))`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await once(holder.stdout!, 'data');
  const beside = await leaseUids(base, 3, 1);
  t.same(beside.uids, [base + 1], 'a uid another process holds is skipped');
  await beside.release();
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  const after = await leaseUids(base, 3, 1);
  t.same(after.uids, [base], "a dead holder's uid is free");
  await after.release();
});

t.test('across the fleet a uid another runner holds is skipped, and one taken over is reported at renewal', async (t) => {
  const redis = new Redis(await testRedis(t));
  t.teardown(() => redis.disconnect());
  const base = 62_600;
  await redis.set(uidLeaseKey(base), 'runner-in-another-pod', 'PX', 60_000);
  const lease = await leaseUids(base, 3, 1, { redis, owner: 'this-runner' });
  t.same(lease.uids, [base + 1], "a uid held in another pod is not this runner's, though its machine has it free");
  t.equal(await redis.get(uidLeaseKey(base + 1)), 'this-runner');
  t.same(await lease.renew(), [], 'renewed');
  await redis.set(uidLeaseKey(base + 1), 'runner-in-another-pod'); // its lease ran out and was taken
  t.same(await lease.renew(), [base + 1], 'a uid taken over is reported lost');
  await lease.release();
  t.equal(await redis.get(uidLeaseKey(base + 1)), 'runner-in-another-pod', "release leaves another runner's lease alone");
});

t.test('jobs starting side by side open the same path at once without tripping on each other', async (t) => {
  const root = await scratch(t);
  // As two runners' first jobs on new stacks both make the state folder's `stacks` on the way.
  const targets = Array.from({ length: 8 }, (_, i) => join(root, 'state', 'stacks', `stack-${i}`));
  await Promise.all(targets.map((target) => openPathTo(root, target)));
  const shared = await stat(join(root, 'state', 'stacks'));
  t.ok(shared.isDirectory(), 'the folder on the way was made once');
  t.equal(shared.mode & 0o777, 0o711, 'and lets others pass, not list');
});

// These run a process as a slot uid, which must reach this checkout (devkit's testIsolation says whether it can).
const unreachable = { skip: testIsolation().why };

t.test('a folder handed to a uid is its alone; the path to it only lets it pass', unreachable, async (t) => {
  const root = await scratch(t);
  const target = join(root, 'a', 'b', 'mine');
  await openPathTo(root, target);
  await ownFolder(target, { uid: UID, gid: UID });
  const [a, b, mine] = await Promise.all([stat(join(root, 'a')), stat(join(root, 'a', 'b')), stat(target)]);
  t.equal(a.mode & 0o777, 0o711);
  t.equal(b.mode & 0o777, 0o711);
  t.equal(mine.mode & 0o777, 0o700);
  t.equal(mine.uid, UID);
  t.equal(await isolationProblem({ uid: UID, gid: UID }, { read: [], execute: [target] }), undefined, 'the uid reaches its folder');
  t.match(
    await isolationProblem({ uid: UID + 1, gid: UID + 1 }, { read: [], execute: [target] }),
    new RegExp(`uid ${UID + 1} cannot run ${target}`),
    'another uid does not',
  );
});

t.test('a runner that cannot give isolation refuses to start unless told RUNNER_ISOLATION=none', unreachable, async (t) => {
  const dir = await scratch(t);
  const hidden = join(dir, 'hidden');
  await mkdir(join(hidden, 'modules'), { recursive: true, mode: 0o700 });
  const config = {
    RUNNER_ISOLATION: 'uid' as const,
    RUNNER_UID_BASE: UID,
    RUNNER_UID_COUNT: 5,
    RUNNER_CONCURRENCY: 2,
    WORK_DIR: join(dir, 'work'),
    PULUMI_BIN: 'pulumi',
    MODULES_DIR: join(hidden, 'modules'),
    PULUMI_BACKEND_URL: pathToFileURL(join(dir, 'state')).href,
    LOCAL_FILES_ROOT: join(dir, 'files'),
    JOB_EGRESS_ALLOW: '',
    JOB_DISK_MAX_MB: 4096,
    JOB_TMP_MAX_MB: 256,
    RUNNER_SANDBOX_DIR: join(dir, 'sandbox'),
  };
  const warnings: string[] = [];
  const logger = { warn: (m: unknown) => void warnings.push(String(m)), info: () => undefined };
  const refused = await prepareIsolation(config, logger).catch((err: Error) => err);
  t.type(refused, IsolationUnavailableError);
  t.match((refused as Error).message, /uid 61990 cannot read .*hidden\/modules.*RUNNER_ISOLATION=none/, 'names the path and the way out');
  t.same(await prepareIsolation({ ...config, RUNNER_ISOLATION: 'none' }, logger), { level: 'none' });
  t.match(warnings.join('\n'), /RUNNER_ISOLATION=none: jobs run as the runner's own user/);
  const modules = join(dir, 'modules');
  await mkdir(modules, { mode: 0o755 });
  const { lease, level } = await prepareIsolation({ ...config, MODULES_DIR: modules }, logger);
  t.equal(level, 'uid');
  t.same(lease?.uids, [UID, UID + 1], 'with every path in reach it isolates, with a uid per slot');
  t.match(
    warnings.join('\n'),
    /RUNNER_ISOLATION=uid: jobs run as uids of their own but share the runner's network/,
    'says what uid alone leaves open',
  );
  await lease?.release();
  t.equal((await stat(config.WORK_DIR)).mode & 0o777, 0o711, 'WORK_DIR can be passed through, not listed');
});

t.test('a stack kept in the shared file-backend layout moves into its own folder once, and only its files', async (t) => {
  const root = await scratch(t);
  const url = pathToFileURL(root).href;
  const shared = join(root, '.pulumi');
  await mkdir(join(shared, 'stacks', 'proj'), { recursive: true });
  await mkdir(join(shared, 'history', 'proj', 'dev'), { recursive: true });
  await mkdir(join(shared, 'history', 'proj', 'prod'), { recursive: true });
  await writeFile(join(shared, 'meta.yaml'), 'version: 1\n');
  await writeFile(join(shared, 'stacks', 'proj', 'dev.json'), '{"dev":1}');
  await writeFile(join(shared, 'stacks', 'proj', 'dev.json.bak'), '{"dev":0}');
  await writeFile(join(shared, 'stacks', 'proj', 'prod.json'), '{"prod":1}');
  await writeFile(join(shared, 'history', 'proj', 'dev', 'dev-1.history.json'), '{}');
  const { dir, url: stackUrl } = stackBackend(url, 'organization/proj/dev');
  t.match(dir, new RegExp(`^${root}/stacks/[0-9a-f]{40}$`));
  t.not(
    stackBackend(url, 'a/local-file-set/b__local-file-set__c').dir,
    stackBackend(url, 'a__local-file-set__b/local-file-set/c').dir,
    'two FQDNs never share a folder',
  );
  t.equal(stackUrl, pathToFileURL(dir!).href);
  t.same(
    stackBackend('s3://bucket', 'organization/proj/dev'),
    { url: 's3://bucket' },
    "blob backends are used as they are for the default tenant's stacks",
  );
  t.same(
    stackBackend('s3://bucket/state?region=eu-west-1', 'acme/organization/proj/dev'),
    { url: 's3://bucket/state/tenants/acme?region=eu-west-1' },
    "another tenant's get a prefix of their own",
  );
  t.not(
    stackBackend(url, 'acme/organization/proj/dev').dir,
    stackBackend(url, 'organization/proj/dev').dir,
    'and a folder of their own on file://',
  );
  t.ok(backendSeparatesTenants('gs://bucket') && backendSeparatesTenants(url));
  t.notOk(backendSeparatesTenants('https://api.pulumi.com'), 'Pulumi Cloud would put two tenants on one stack');
  t.equal(await adoptSharedLayout(url, 'organization/proj/dev'), true);
  t.equal(await readFile(join(dir!, '.pulumi', 'stacks', 'proj', 'dev.json'), 'utf8'), '{"dev":1}');
  t.ok(await stat(join(dir!, '.pulumi', 'stacks', 'proj', 'dev.json.bak')));
  t.ok(await stat(join(dir!, '.pulumi', 'history', 'proj', 'dev', 'dev-1.history.json')));
  t.ok(await stat(join(dir!, '.pulumi', 'meta.yaml')));
  t.ok(await stat(join(shared, 'stacks', 'proj', 'prod.json')), 'another stack stays where it was');
  t.notOk(await stat(join(shared, 'stacks', 'proj', 'dev.json')).catch(() => undefined), 'moved, not copied');
  t.equal(await adoptSharedLayout(url, 'organization/proj/dev'), false, 'once');
  t.equal(await adoptSharedLayout(url, 'organization/proj/new'), false, 'a new stack has nothing to adopt');
});

t.test(
  'a slot is reset for its next job: every process of its uid killed, even one that keeps forking; its home and temp files gone',
  unreachable,
  async (t) => {
    const lease = await leaseUids(UID, 2, 2); // the uids are this test's alone
    t.teardown(() => lease.release());
    const workDir = await scratch(t);
    // A leftover that keeps forking (no killer running as its uid: the runner kills as itself, so this
    // cannot kill the killer either).
    const fighter = `
    const { spawn } = require('node:child_process');
    let forks = 0;
    setInterval(() => {
      if (forks++ < 200) spawn('sleep', ['600'], { detached: true, stdio: 'ignore' }).unref();
    }, 1);`;
    const start = (uid: number, args: string[]) => spawn(args[0]!, args.slice(1), { uid, gid: uid, detached: true, stdio: 'ignore' });
    const left = start(UID, [process.execPath, '-e', fighter]);
    const other = start(UID + 1, ['sleep', '600']);
    t.teardown(() => void other.kill('SIGKILL'));
    await Promise.all([once(left, 'spawn'), once(other, 'spawn')]);
    while ((await processesOf(UID)).length < 5) await new Promise((r) => setTimeout(r, 10));
    const slot = { index: 0, identity: { uid: UID, gid: UID } };
    await mkdir(join(workDir, 'slots', `uid-${UID}`, 'pulumi-home', 'plugins'), { recursive: true });
    await writeFile(join(workDir, 'slots', `uid-${UID}`, 'planted'), 'x');
    const tmpOfUid = join('/tmp', `pds-reset-test-${process.pid}`);
    const tmpOfRoot = `${tmpOfUid}-root`;
    await Promise.all([writeFile(tmpOfUid, 'x'), writeFile(tmpOfRoot, 'x')]);
    await chown(tmpOfUid, UID, UID);
    t.teardown(() => rm(tmpOfRoot, { force: true }));

    await resetSlot(workDir, slot);
    t.same(await processesOf(UID), [], 'no process of the uid is left');
    t.equal(other.exitCode ?? other.signalCode, null, "another uid's process runs on");
    const home = join(workDir, 'slots', `uid-${UID}`);
    t.same((await readdir(home)).sort(), ['pulumi-home', 'tmp'], 'the home holds a new Pulumi home and tmp, nothing else');
    t.same(await readdir(join(home, 'pulumi-home')), []);
    t.equal((await stat(home)).uid, UID, "and is the uid's");
    t.notOk(await stat(tmpOfUid).catch(() => undefined), 'what the uid left in /tmp is gone');
    t.ok(await stat(tmpOfRoot), 'what others left there stays');
  },
);

/** A process whose main thread exits by itself while another thread of it runs on (Linux: SYS_exit). */
const ZOMBIE_LEADER = `
import ctypes, platform, threading, time
threading.Thread(target=lambda: [time.sleep(0.1) for _ in iter(int, 1)]).start()
time.sleep(0.1)
ctypes.CDLL(None).syscall({'x86_64': 60, 'aarch64': 93}[platform.machine()], 0)
`;
const python = spawnSync('python3', ['--version']).status === 0;

t.test(
  'a process whose main thread exited while its other threads run is found and killed, not taken for a zombie',
  { skip: testIsolation().why ?? (python ? false : 'python3 is not installed') },
  async (t) => {
    const lease = await leaseUids(UID + 2, 8, 1); // a uid of this test's alone
    t.teardown(() => lease.release());
    const uid = lease.uids[0]!;
    const child = spawn('python3', ['-c', ZOMBIE_LEADER], { uid, gid: uid, stdio: 'ignore' });
    t.teardown(() => void child.kill('SIGKILL'));
    await once(child, 'spawn');
    const status = () => readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    while (!/^State:\s+Z/m.test(await status())) await new Promise((r) => setTimeout(r, 10));
    t.match(await status(), /^Threads:\s+2/m, 'its main thread is a zombie, another thread runs');
    t.same(
      (await processesOf(uid)).map((p) => p.pid),
      [child.pid],
      'found as a process of the uid',
    );
    await killProcessesOf({ uid, gid: uid });
    t.same(await processesOf(uid), [], 'none left');
    t.notMatch(await status(), /^Threads:\s+[2-9]/m, 'its threads are gone');
  },
);
