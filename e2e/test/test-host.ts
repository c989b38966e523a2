import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readlink } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A host of the test's own, in a network namespace it makes, joined to this machine by a veth pair
 * (10.213.<n>.1 here, 10.213.<n>.2 there): an address outside the machine that a sandboxed job's
 * traffic can be sent to (only ever this one), serving one line to whoever connects.
 */
export async function startTestHost(
  t: { teardown(fn: () => unknown): void },
  n: number,
): Promise<{ address: string; machineSide: string; port: number }> {
  const holder = spawn('unshare', ['--net', 'sleep', '3600'], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await waitForNamespace(holder);
  const [here, there] = [`pdsth${n}a`, `pdsth${n}b`];
  const machineSide = `10.213.${n}.1`;
  const address = `10.213.${n}.2`;
  // A run killed mid-test (its teardown never ran) leaves the link behind, and its name taken.
  await run('ip', ['link', 'del', here]).catch(() => undefined);
  await run('ip', ['link', 'add', here, 'type', 'veth', 'peer', 'name', there]);
  t.teardown(() => run('ip', ['link', 'del', here]).catch(() => undefined));
  await run('ip', ['link', 'set', there, 'netns', String(holder.pid)]);
  await run('ip', ['addr', 'add', `${machineSide}/30`, 'dev', here]);
  await run('ip', ['link', 'set', here, 'up']);
  const inside = ['--net=/proc/' + holder.pid + '/ns/net', '--'];
  await run('nsenter', [...inside, 'ip', 'addr', 'add', `${address}/30`, 'dev', there]);
  await run('nsenter', [...inside, 'ip', 'link', 'set', there, 'up']);
  const port = 8080;
  const server = spawn(
    'nsenter',
    [
      ...inside,
      process.execPath,
      '-e',
      `require('net').createServer((s) => s.end('hello from the test host\\n')).listen(${port}, '${address}', () => console.log('listening'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => server.kill('SIGKILL'));
  await once(server.stdout!, 'data');
  return { address, machineSide, port };
}

async function waitForNamespace(holder: ChildProcess): Promise<void> {
  const own = await readlink('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    const theirs = await readlink(`/proc/${holder.pid}/ns/net`).catch(() => own);
    if (theirs !== own) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the test host namespace did not come up');
}
