import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAIR_TENANTS, injectCaller, recentOutput, runFairShare } from '@pds/devkit';
import t from 'tap';
import { startStack, startStandInRunners } from './harness.js';

/** Tenant fa floods, fb and fc come after; weights 1:1:2 (the bench runs the issue's 500 and 50s). */
const FLOOD = Number(process.env.FAIR_FLOOD ?? 100);
const EACH = Number(process.env.FAIR_EACH ?? 60);
const RUNNERS = 3;
const SLOTS = 4;

t.test(
  `fair share: ${FLOOD} jobs of one tenant, then ${EACH} each of two more (weights 1:1:2), on ${RUNNERS} runner processes × ${SLOTS} slots`,
  async (t) => {
    const stack = await startStack(t, { RUNNER_CONCURRENCY: 1 }, { prefix: 'bull' });
    // Only the runner processes take jobs (and lead the dispatch).
    await stack.runner.close();
    const scratch = await mkdtemp(join(tmpdir(), 'pds-fair-'));
    t.teardown(() => rm(scratch, { recursive: true, force: true }));
    let runners: Awaited<ReturnType<typeof startStandInRunners>>['runners'] = [];
    const standInLog = join(scratch, 'runs.log');
    const figures = await runFairShare({
      call: injectCaller(stack.api, stack.auth),
      models: stack.models,
      filesRoot: tmpdir(),
      startRunners: async () => {
        ({ runners } = await startStandInRunners(t, stack, scratch, { count: RUNNERS, slots: SLOTS, standInMs: 300, log: standInLog }));
        return RUNNERS * SLOTS;
      },
      standInLog,
      flood: FLOOD,
      each: EACH,
      pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      progress: (what) => process.env.FAIR_PROGRESS && t.comment(what),
    });
    t.same(figures.failed, [], 'every job succeeded');
    if (figures.failed.length) for (const runner of runners) t.comment(recentOutput(runner).slice(-3000));
    // Not behind the flood: while a later tenant's first job waited, at most a pool's worth of the
    // flood's jobs started (its time against one job's is the bench's figure; a loaded machine stretches both).
    for (const [tenant, passedBy] of Object.entries(figures.firstPassedBy))
      t.ok(
        passedBy <= RUNNERS * SLOTS,
        `${tenant}'s first job was passed by ${passedBy} of fa's ${FLOOD} (at most ${RUNNERS * SLOTS}); it started ${figures.firstWaitMs[tenant]} ms after it was queued (one job: ${figures.oneJobMs} ms)`,
      );
    t.ok(figures.floodStillWaiting, 'the flood still waited when the contended period ended (everyone wanted slots throughout)');
    t.ok(figures.contendedMs > 3 * figures.oneJobMs, `a contended period of several jobs (${figures.contendedMs} ms)`);
    t.comment(
      `share of slot-time / share of weight: ${Object.entries(figures.shareOfWeight)
        .map(([tenant, ratio]) => `${tenant} ${ratio.toFixed(3)}`)
        .join(
          ', ',
        )}; Jain's index ${figures.jain.toFixed(4)}; slots held ${(100 * figures.busy).toFixed(1)} %, running Pulumi ${(100 * figures.pulumi).toFixed(1)} %`,
    );
    for (const { name } of FAIR_TENANTS) {
      const ratio = figures.shareOfWeight[name] as number;
      t.ok(Math.abs(ratio - 1) <= 0.1, `${name}: its share of slot-time is ${ratio.toFixed(3)} of its weight's (within 10 %)`);
    }
  },
);
