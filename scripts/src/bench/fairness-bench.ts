/**
 * Fair share of the runner pool (devkit's fair-share scenario, the suite's e2e/test/fair-share.test.ts
 * at the size): tenant fa queues 500 jobs, then fb and fc 50 each, weights 1:1:2, on 3
 * runner processes × 4 slots, with the stand-in CLI (300 ms a run). The figures are set against
 * their goals (the baseline of a share is the tenant's weight).
 */
import { join } from 'node:path';
import { FAIR_TENANTS, injectCaller, jobWritableFile, type Managed, runFairShare, startStandInRunnerProcesses } from '@pds/devkit';
import { startBenchService } from './bench-service.js';
import { benchStep, fmt, row, sized, sleep } from './stats.js';

const RUNNERS = 3;
const SLOTS = 4;

export async function fairnessBench(): Promise<void> {
  const service = await startBenchService('fairness', () => ({}));
  let runners: Managed[] = [];
  try {
    console.log(`\n== fair share of the runner pool (stand-in CLI, ${RUNNERS} runner processes × ${SLOTS} slots) ==`);
    await service.runner.close(); // only the runner processes take jobs (and lead the dispatch)
    const standInLog = jobWritableFile(service.scratch, 'fair-runs.log');
    const flood = sized(500, 20);
    const each = sized(50, 8);
    benchStep(`${flood} jobs of fa, then ${each} each of fb and fc`);
    const figures = await runFairShare({
      call: injectCaller(service.app, service.auth),
      models: service.models,
      filesRoot: service.config.LOCAL_FILES_ROOT as string,
      startRunners: async () => {
        ({ runners } = await startStandInRunnerProcesses({
          mongoUrl: service.config.MONGO_URL,
          redisUrl: service.config.REDIS_URL,
          filesRoot: service.config.LOCAL_FILES_ROOT as string,
          scratch: join(service.scratch, 'fleet'),
          count: RUNNERS,
          slots: SLOTS,
          standInMs: 300,
          log: standInLog,
        }));
        return RUNNERS * SLOTS;
      },
      standInLog,
      flood,
      each,
      pause: async (ms) => void (await sleep(ms)),
    });
    if (figures.failed.length) console.log(`  jobs that did not succeed: ${figures.failed.slice(0, 5).join('; ')}`);
    for (const [tenant, waited] of Object.entries(figures.firstWaitMs))
      row(`${tenant}: first job queued -> started, vs one job`, waited, figures.oneJobMs, 'ms', '<= one job (ratio <= 1)');
    for (const { name, weight } of FAIR_TENANTS)
      row(`${name} (weight ${weight}): share of slot-time / weight's`, figures.shareOfWeight[name] as number, 1, '', 'within 10 %');
    console.log(`Jain's fairness index over the contended ${fmt(figures.contendedMs / 1000, 1)} s: ${fmt(figures.jain, 4)} (1 = fair)`);
    console.log(
      `slots held by a job ${fmt(100 * figures.busy, 1)} % of the contended period (the rest: hand-over), running Pulumi ${fmt(100 * figures.pulumi, 1)} %; ${fmt(figures.jobsPerSecond, 1)} jobs/s over the run${figures.floodStillWaiting ? '' : ' (the flood ran out before the period ended: shares are not contended)'}`,
    );
  } finally {
    await Promise.allSettled(runners.map((r) => r.stop()));
    await service.stop();
  }
}
