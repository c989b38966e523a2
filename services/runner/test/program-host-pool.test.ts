import { join } from 'node:path';
import { repoRoot } from '@pds/shared';
import t from 'tap';
import { ProgramHostPool } from '../src/pulumi/program-host-pool.js';

const programDir = join(repoRoot, 'modules/LocalFileSet');
const env = { PATH: process.env.PATH ?? '' };

t.test('the pool hands out a loaded host once, keeps a replacement warming, and stops its hosts on close', async (t) => {
  const pool = new ProgramHostPool(2);
  const first = await pool.take(programDir, env);
  t.teardown(() => first.kill('SIGKILL'));
  t.ok(first.connected, 'a live host with its IPC channel');
  t.equal(pool.size, 1, 'a replacement is warming');
  const second = await pool.take(programDir, env);
  t.teardown(() => second.kill('SIGKILL'));
  t.not(second.pid, first.pid, 'a host serves one job: the next take is another process');
  const ready = new Promise<{ type: string; eventsAddress?: string }>((resolve) => second.on('message', resolve));
  second.send({ type: 'start', main: 'dist/index.js', env: { STACK_INPUT_YAML: 'target: {}' } });
  t.match(await ready, { type: 'ready', eventsAddress: /^tcp:\/\/127\.0\.0\.1:\d+$/ }, 'a taken host answers its job at once');

  await pool.take('/nonexistent/program', env).then(
    (child) => child.kill('SIGKILL'),
    (err: Error) => t.match(err.message, /exited|could not start/, 'a host that cannot load says so'),
  );
  t.ok(pool.size <= 2, 'never more warm hosts than the bound');
  const warm = pool.size;
  await pool.close();
  t.equal(pool.size, 0);
  t.ok(warm > 0, 'there were warm hosts to stop');
});
