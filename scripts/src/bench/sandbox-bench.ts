/**
 * The job sandbox's cost (RUNNER_ISOLATION=sandbox against uid, same run, same machine):
 * - created → spawned p50 (the API's 202 to the job's first Pulumi process) and a real `pulumi up`
 *   through the whole service, rounds alternating between two services, one of each level;
 * - one sandboxed process against the same process started as the slot's uid (`true`), the raw
 *   price of sh + nsenter + bwrap + prlimit + setpriv.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { testIsolation, toolPath } from '@pds/devkit';
import { openSlotSandboxes, sandboxSettings } from '@pds/runner';
import type { Config } from '@pds/shared';
import { startBenchService } from './bench-service.js';
import { benchStep, percentile, row, sized } from './stats.js';

const run = promisify(execFile);

const manifest = (directory: string, content: string) =>
  `  directory: ${directory}\n  files:\n    - path: a.txt\n      content: ${content}\n`;

export async function sandboxBench(): Promise<void> {
  console.log('\n== job sandbox (sandbox vs uid, same run) ==');
  if (testIsolation().isolation !== 'sandbox') {
    console.log(`skipped: ${testIsolation().sandboxWhy ?? testIsolation().why ?? 'no sandbox here'}`);
    return;
  }
  await processCost();
  const level = (isolation: Config['RUNNER_ISOLATION']) => () => ({ PULUMI_BIN: toolPath('pulumi'), RUNNER_ISOLATION: isolation });
  const sandboxed = await startBenchService('sandbox', level('sandbox'));
  const plain = await startBenchService('uid', level('uid'));
  try {
    const services = [
      { service: sandboxed, spawn: [] as number[], up: [] as number[] },
      { service: plain, spawn: [] as number[], up: [] as number[] },
    ];
    const resources = await Promise.all(
      services.map(({ service }) => service.createResource('bench-up', manifest(join(service.scratch, 'files'), 'v0'))),
    );
    const rounds = sized(7, 2);
    for (let i = 1; i <= rounds; i++) {
      for (const [index, entry] of services.entries()) {
        const { service } = entry;
        const id = resources[index]!.id;
        await service.app.inject({
          method: 'PUT',
          url: `/v1/resources/${id}`,
          headers: { ...service.auth, 'content-type': 'application/yaml' },
          payload: `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: bench-up\nspec:\n${manifest(join(service.scratch, 'files'), `v${i}`)}`,
        });
        benchStep(`real up ${i} of ${rounds}, ${index === 0 ? 'sandbox' : 'uid'}`);
        const start = performance.now();
        const job = await service.queueJob(id, 'up');
        const [status] = await service.waitEnded([job.id]);
        if (status !== 'succeeded') throw new Error(`an up ended ${status}`);
        const took = performance.now() - start;
        const doc = await service.models.StackJob.findById(job.id, { createdAt: 1, spawnedAt: 1 }).lean<{
          createdAt: Date;
          spawnedAt?: Date;
        }>();
        if (i === 1) continue; // the first round warms program hosts and the stack
        entry.up.push(took);
        if (doc?.spawnedAt) entry.spawn.push(doc.spawnedAt.getTime() - doc.createdAt.getTime());
      }
    }
    const [s, u] = services as [(typeof services)[0], (typeof services)[0]];
    const spawnDiff = percentile(s.spawn, 50) - percentile(u.spawn, 50);
    row(
      'created → spawned p50, sandbox vs uid',
      percentile(s.spawn, 50),
      percentile(u.spawn, 50),
      'ms',
      `<= +5 ms (here ${spawnDiff >= 0 ? '+' : ''}${Math.round(spawnDiff)} ms)`,
    );
    const upDiff = percentile(s.up, 50) - percentile(u.up, 50);
    row(
      `real pulumi up, median of ${rounds - 1}, sandbox vs uid`,
      percentile(s.up, 50),
      percentile(u.up, 50),
      'ms',
      `<= +3% (here ${upDiff >= 0 ? '+' : ''}${Math.round(upDiff)} ms)`,
    );
  } finally {
    await sandboxed.stop();
    await plain.stop();
  }
}

/** One sandboxed `true` against `true` as the same uid, 30 of each. */
async function processCost(): Promise<void> {
  const settings = await sandboxSettings({
    WORK_DIR: '/tmp/pds-sandbox-bench',
    PULUMI_BACKEND_URL: 'file:///tmp/pds-sandbox-bench/state',
    JOB_EGRESS_ALLOW: '',
    JOB_TMP_MAX_MB: 64,
    JOB_DISK_MAX_MB: 64,
    RUNNER_SANDBOX_DIR: '/run/pulumi-deploy-bench',
    PULUMI_BIN: toolPath('pulumi'),
    MODULES_DIR: '/nonexistent',
  });
  if ('problem' in settings) throw new Error(settings.problem);
  const uid = 64_999;
  const sandbox = (await openSlotSandboxes(settings, [uid], { info: () => undefined })).get(uid)!;
  try {
    const sandboxedMs: number[] = [];
    const plainMs: number[] = [];
    benchStep('one process started');
    for (let i = 0; i < sized(30, 3); i++) {
      const command = sandbox.command({ writable: [], readOnly: [], cwd: '/' }, '/bin/true', []);
      let start = performance.now();
      await run(command.file, command.args);
      sandboxedMs.push(performance.now() - start);
      start = performance.now();
      await run('/bin/true', [], { uid, gid: uid });
      plainMs.push(performance.now() - start);
    }
    row(
      'one process started, sandbox vs uid, p50',
      percentile(sandboxedMs, 50),
      percentile(plainMs, 50),
      'ms',
      'measured (a job starts 3-5)',
    );
  } finally {
    await sandbox.close();
  }
}
