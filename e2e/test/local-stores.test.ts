import { readdir, readFile, readlink, mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalFerretDb, startLocalRedis } from '@pds/devkit';
import {
  HISTORY_SWEEP_LOCK_KEY,
  REDIS_DEFAULT_USER_OFF,
  REDIS_SCALER_RULES,
  redisUserDirective,
  JOBS_BACKLOG_LIST,
  STORE_USERS,
  type StoreUser,
} from '@pds/shared';
import { execa } from 'execa';
import t from 'tap';

/** Sends one inline Redis command on a fresh connection; answers the first reply line. */
function ask(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('data', (data) => {
      socket.destroy();
      resolve(String(data).split('\r\n')[0] ?? '');
    });
    socket.write(`${command}\r\n`);
  });
}

/** The embedded default's Redis (npm run demo / dev) takes a password made for its data folder. */
t.test('a local Redis with a password refuses clients without it', async (t) => {
  const redis = await startLocalRedis({ password: 'a-password-made-for-this-test' });
  t.teardown(() => redis.stop());
  t.match(await ask(redis.port, 'PING'), /^-NOAUTH/, 'no password: refused');
  t.match(await ask(redis.port, 'PSUBSCRIBE *'), /^-NOAUTH/, 'no subscribing to every job either');
  t.match(await ask(redis.port, 'AUTH a-wrong-password'), /^-WRONGPASS/, 'a wrong one: refused');
  t.equal(await ask(redis.port, 'AUTH a-password-made-for-this-test'), '+OK', 'its own: accepted');
  t.match(redis.url, /^redis:\/\/:a-password-made-for-this-test@127\.0\.0\.1:\d+$/, 'the URL the services get carries it');
  t.notMatch(redis.shownUrl, /a-password/, 'the URL that is printed does not');
});

/** Sends inline commands on one connection, after AUTH as `user`; answers each first reply line. */
async function askAs(port: number, user: string, password: string, commands: string[]): Promise<string[]> {
  const socket = connect(port, '127.0.0.1');
  const replies: string[] = [];
  let pending = '';
  const next = () =>
    new Promise<string>((resolve, reject) => {
      socket.once('error', reject);
      const onData = (data: Buffer) => {
        pending += String(data);
        const end = pending.indexOf('\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const line = pending.slice(0, end);
        pending = '';
        resolve(line);
      };
      socket.on('data', onData);
    });
  for (const command of [`AUTH ${user} ${password}`, ...commands]) {
    socket.write(`${command}\r\n`);
    replies.push(await next());
  }
  socket.destroy();
  return replies.slice(1);
}

/** Each service is its own Redis user with only what it uses (compose, Kubernetes and the embedded default). */
t.test('a Redis user per service: each reaches its own keys and channels, none administers the server', async (t) => {
  const users = Object.fromEntries(STORE_USERS.map((user) => [user, `${user}-password-for-this-test`]));
  const redis = await startLocalRedis({
    users: [
      REDIS_DEFAULT_USER_OFF,
      ...STORE_USERS.map((user) => redisUserDirective(user, users[user] as string)),
      `queue-scaler reset on >scaler-password ${REDIS_SCALER_RULES}`,
    ],
  });
  t.teardown(() => redis.stop());
  const as = (user: StoreUser, ...commands: string[]) => askAs(redis.port, user, users[user] as string, commands);
  t.match(await ask(redis.port, 'PING'), /^-NOAUTH/, 'no name: refused (the default user is off)');

  const ticket = 'pds:stream-ticket:abc';
  t.same(await as('api', `SET ${ticket} x`, 'SET pds:job:j1:progress {}'), ['+OK', '+OK'], 'the API makes tickets and job keys');
  t.equal((await as('api', 'GET pds:uid-lease:1001'))[0]?.slice(0, 7), '-NOPERM', 'the API holds no uid lease');
  t.equal((await as('runner', `GET ${ticket}`))[0]?.slice(0, 7), '-NOPERM', 'a runner reads no stream ticket');
  t.equal((await as('runner', 'SET pds:uid-lease:1001 r1'))[0], '+OK', 'a runner takes its uid leases');
  t.equal((await as('runner', `SET ${HISTORY_SWEEP_LOCK_KEY} r1 NX PX 1000`))[0], '+OK', 'and the history sweep’s lock');
  t.equal((await as('runner', 'GET pds:idempotency:p:k'))[0]?.slice(0, 7), '-NOPERM', 'nor what the API remembers of callers');

  const gateway = await as(
    'stream-gateway',
    `GETDEL ${ticket}`,
    'GET pds:job:j1:progress',
    'SET pds:stream-ticket:forged x',
    'PUBLISH pds:job:j1 forged',
    'SUBSCRIBE pds:cancel',
  );
  t.equal(gateway[0], '$1', 'the gateway redeems a stream ticket');
  t.equal(gateway[1]?.slice(0, 7), '-NOPERM', 'it reads no job key');
  t.equal(gateway[2]?.slice(0, 7), '-NOPERM', 'it makes no ticket');
  t.equal(gateway[3]?.slice(0, 7), '-NOPERM', 'it publishes nothing');
  t.equal(gateway[4]?.slice(0, 7), '-NOPERM', 'it hears no cancel');
  t.equal((await as('stream-gateway', 'SUBSCRIBE pds:job:j1'))[0], '*3', 'it subscribes to a job');

  const scaler = await askAs(redis.port, 'queue-scaler', 'scaler-password', [
    `LLEN ${JOBS_BACKLOG_LIST}`,
    'LLEN bull:stack-jobs:active',
    `LPOP ${JOBS_BACKLOG_LIST}`,
  ]);
  t.same(
    scaler.map((reply) => reply.slice(0, 7)),
    [':0', '-NOPERM', '-NOPERM'],
    'the queue scaler reads the length of the waiting list, and nothing else',
  );

  for (const user of STORE_USERS) {
    const refused = [
      'FLUSHALL',
      'CONFIG GET requirepass',
      'KEYS *',
      'ACL LIST',
      'MONITOR',
      'RANDOMKEY',
      'PUBSUB CHANNELS',
      'SCRIPT FLUSH',
      'GET some-other-key',
    ];
    const admin = await as(user, ...refused);
    t.same(
      admin.map((reply) => reply.slice(0, 7)),
      refused.map(() => '-NOPERM'),
      `${user}: none of ${refused.join(', ')}`,
    );
  }
});

/** The embedded default's FerretDB listens on a unix socket only the service's user can open. */
t.test("a local FerretDB on a unix socket: no TCP listener, and another uid can't connect", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pds-socket-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const ferret = await startLocalFerretDb({ dataDir: join(dataDir, 'ferretdb'), socket: true });
  t.teardown(() => ferret.stop());
  const socket = join(dataDir, 'ferretdb', 'ferretdb.sock');
  t.equal(ferret.url, `mongodb://${encodeURIComponent(socket)}/pulumi-deploy`);
  t.equal((await stat(join(dataDir, 'ferretdb'))).mode & 0o777, 0o700, 'its folder is the service user’s only');
  const listening = await readFile('/proc/net/tcp', 'utf8');
  const ferretInodes = await socketInodes(ferret.pid as number);
  t.notOk(
    listening.split('\n').some((row) => row.split(/\s+/)[4] === '0A' && ferretInodes.has(row.trim().split(/\s+/)[9] ?? '')),
    'FerretDB listens on no TCP port',
  );
  t.equal(await connectAs(socket), 'connected', 'the service user connects');
  if (process.getuid?.() === 0) t.equal(await connectAs(socket, 65534), 'EACCES', 'another uid is refused');
});

/** The inodes of a process's open sockets (what /proc/net/tcp rows name). */
async function socketInodes(pid: number): Promise<Set<string>> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return new Set(links.flatMap((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1] ?? []));
}

/** Connects to a unix socket from a child process (as `uid`, when given); answers `connected` or the error code. */
async function connectAs(path: string, uid?: number): Promise<string> {
  const script = `require('net').connect(${JSON.stringify(path)}).on('connect', function () { console.log('connected'); this.destroy(); }).on('error', (e) => console.log(e.code));`;
  const { stdout } = await execa(process.execPath, ['-e', script], uid === undefined ? {} : { uid, gid: uid });
  return stdout.trim();
}
