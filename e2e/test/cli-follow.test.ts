/** `pds watch` across a gateway restart, giving up when it stays away, and its live table in a real pseudo-terminal. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { BIN, ownGateway, servicesForCli } from './cli-harness.js';
import { fileSetManifest, until } from './harness.js';

t.test('pds follows a job across a gateway restart, and gives up (exit 5) when it stays away', async (t) => {
  const { stack, work, env: base } = await servicesForCli(t, 'pds-cli-resume-');
  let gateway = await ownGateway(stack, 0);
  const port = gateway.port;
  t.teardown(() => gateway.stop());
  const env = { ...base, PDS_GATEWAY_URL: `http://127.0.0.1:${port}` };
  const manifest = join(work, 'slow.yaml');
  const files = [1, 2, 3].map((i) => ({ path: `f${i}.txt`, content: `${i}`, delayMs: 1_500 }));
  await writeFile(manifest, fileSetManifest('cli-resume', join(work, 'out'), files));

  // Watching: the gateway goes away after the first resource and comes back once the CLI has said it lost the stream.
  const deployed = await execa(process.execPath, [BIN, 'deploy', '-f', manifest, '-o', 'json'], { env, extendEnv: false });
  const jobId = (JSON.parse(deployed.stdout) as { job: { id: string } }).job.id;
  const watching = execa(process.execPath, [BIN, 'watch', jobId], { env, extendEnv: false, reject: false });
  let stdout = '';
  const sawCreate = new Promise<void>((resolve) => {
    watching.stdout?.on('data', (chunk: Buffer) => {
      stdout += String(chunk);
      if (/✓ create/.test(stdout)) resolve();
    });
  });
  const early = await Promise.race([sawCreate.then(() => undefined), watching.then((done) => done.stderr)]);
  if (early !== undefined) t.fail(`watch ended before the restart: ${early}`);
  let stderr = '';
  watching.stderr?.on('data', (chunk: Buffer) => void (stderr += String(chunk)));
  await gateway.stop();
  await until(() => /lost the stream .*trying again/.test(stderr), 'the CLI says it lost the stream', 30_000);
  gateway = await ownGateway(stack, port);
  const watched = await watching;
  t.equal(watched.exitCode, 0, `followed to its end across the restart (${watched.stderr.slice(-300)})`);
  t.match(watched.stderr, /lost the stream .*trying again/, 'it said it lost the stream and tried again');
  for (const file of ['f1.txt', 'f2.txt', 'f3.txt'])
    t.equal(watched.stdout.split('\n').filter((line) => line.endsWith(` ${file}`)).length, 1, `${file}: shown once, no gap, no duplicate`);
  t.equal(
    watched.stdout.split('\n').filter((line) => line === 'status running').length,
    1,
    'its status said once, not again on the reconnection',
  );

  // At a terminal (a real pseudo-terminal, from util-linux's `script`): the table redrawn in place.
  await writeFile(
    manifest,
    fileSetManifest(
      'cli-resume',
      join(work, 'out'),
      files.map((f) => ({ ...f, content: `${f.content}!` })),
    ),
  );
  const again = await execa(process.execPath, [BIN, 'deploy', '-f', manifest, '-o', 'json'], { env, extendEnv: false });
  const againId = (JSON.parse(again.stdout) as { job: { id: string } }).job.id;
  const tty = await execa('script', ['-qec', `${process.execPath} ${BIN} watch ${againId}`, '/dev/null'], {
    env: { ...env, TERM: 'xterm' },
    extendEnv: false,
    reject: false,
  });
  t.equal(tty.exitCode, 0, `watch at a terminal: exit 0 (${tty.stdout.slice(-300)})`);
  const ESC = String.fromCharCode(27);
  t.match(tty.stdout, new RegExp(`${ESC}\\[\\d+A\\r${ESC}\\[J`), 'frames redrawn in place (cursor up, clear below)');
  const lastFrame = tty.stdout.split(`${ESC}[J`).at(-1) ?? '';
  for (const file of ['f1.txt', 'f2.txt', 'f3.txt'])
    t.match(lastFrame, new RegExp(`✓.*update.*${file.replace('.', '\\.')}`), `the last frame: ${file} updated`);
  t.match(lastFrame, /^succeeded/m, 'the last frame shows the end');
  t.match(lastFrame, /job \S+ succeeded/, 'and the outcome is said after it');

  // A gateway that stays away: it gives up (here after 3 s, PDS_FOLLOW_GIVE_UP_SECONDS) with exit 5.
  await gateway.stop();
  const abandoned = await execa(process.execPath, [BIN, 'watch', jobId], {
    env: { ...env, PDS_FOLLOW_GIVE_UP_SECONDS: '3' },
    extendEnv: false,
    reject: false,
  });
  t.equal(abandoned.exitCode, 5, 'gave up: exit 5');
  t.match(abandoned.stderr, /gave up following job/);
  gateway = await ownGateway(stack, port); // for the teardown
});
