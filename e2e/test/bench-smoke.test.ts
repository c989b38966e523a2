/**
 * Benches that cannot rot: `npm run bench` whole, at a tiny size (BENCH_SMOKE=1: a few jobs, lines
 * and clients), as part of the suite. It asserts that every bench completes within its limit and
 * prints every figure as a number — never a time: a smoke run's figures mean nothing.
 */
import { join } from 'node:path';
import { testIsolation } from '@pds/devkit';
import { repoRoot } from '@pds/shared';
import { execa } from 'execa';
import t from 'tap';

/** Each bench's heading, and figures it must print (a row's label, then numbers). */
const EXPECTED: Record<string, string[]> = {
  '== runner': ['real pulumi up, median of 1', 'operation spawned', 'end published', 'lines published per second'],
  '== job sandbox': [
    'one process started, sandbox vs uid, p50',
    'created → spawned p50, sandbox vs uid',
    'real pulumi up, median of 1, sandbox vs uid',
  ],
  '== stream gateway': [
    'latency p50, 1 client(s), 1000 lines/s',
    'latency p99, 5 client(s), 1000 lines/s',
    'delivered lines/s, 5 clients',
    'server memory per idle connection',
    'redis subscriptions, 5 clients on one job',
  ],
  'API (autocannon': ['GET /v1/jobs/:id (ended) requests/s', 'GET /v1/jobs/:id (queued) p99', 'POST /v1/resources/:id/jobs requests/s'],
  '== fleet scheduling': [
    'job created -> pulumi spawned p50',
    'dispatcher: created -> spawned p50, through it vs straight onto the runner queue',
    'jobs/s through the dispatcher, 8 refreshes on 4 stacks, conc. 8',
    'isolated (uid) vs not: created -> spawned p50',
  ],
  '== fair share of the runner pool': [
    'fb: first job queued -> started, vs one job',
    "fa (weight 1): share of slot-time / weight's",
    "fc (weight 2): share of slot-time / weight's",
  ],
  '== lines at volume': ['peak heap growth, 1000 vs 500 lines', 'live heap growth (after GC, every 0.5 s), 1000 vs 500'],
  '== store scale': [
    'history vs empty: created -> spawned p50',
    'history vs empty: GET /v1/jobs/:id',
    'history vs empty: token check (uncached) p50',
  ],
};

// Longer than the suite's 480 s per file: the benches' own limits are what stop a hung one.
t.setTimeout(16 * 60_000);
// Where the machine gives no sandbox, its bench says so and measures nothing.
if (testIsolation().isolation !== 'sandbox') EXPECTED['== job sandbox'] = [];

t.test('every bench completes at a tiny size and prints every figure', async (t) => {
  const run = await execa(process.execPath, ['--expose-gc', '--enable-source-maps', join(repoRoot, 'scripts/dist/bench/index.js')], {
    env: { ...process.env, BENCH_SMOKE: '1' },
    reject: false,
    all: true,
    // Each bench gives up by itself past its own limit (stats.ts); this only catches a run that does not.
    timeout: 15 * 60_000,
  });
  t.equal(run.exitCode, 0, `npm run bench exits 0 (${run.timedOut ? 'timed out' : 'completed'})`);
  const output = run.all ?? '';
  t.notMatch(output, /gave up after|failed in step/, 'no bench gave up');
  const lines = output.split('\n');
  for (const [heading, figures] of Object.entries(EXPECTED)) {
    t.ok(
      lines.some((line) => line.startsWith(heading)),
      `the ${heading} bench ran`,
    );
    for (const figure of figures) {
      const row = lines.find((line) => line.startsWith(figure));
      t.match(row?.slice(figure.length), /^\s+-?\d/, `${figure}: a number`);
    }
    // A section without its figures: what it printed instead (a `skipped:` line says why).
    const at = lines.findIndex((line) => line.startsWith(heading));
    if (at >= 0 && figures.some((figure) => !lines.some((line) => line.startsWith(figure)))) t.comment(lines.slice(at, at + 6).join('\n'));
  }
  t.match(output, /1000-line job: succeeded, \d+ lines persisted in order/, 'the flooding job ended with its lines stored');
  // Every comparison row has both its figures (its ratio may be n/a: a tiny run can measure 0 of both).
  const blank = lines.filter((line) => line.includes(' ratio ') && /\b(n\/a|NaN)\b/.test(line.split(' ratio ')[0] ?? ''));
  t.same(blank, [], 'no figure left without a value');
  if (run.exitCode !== 0) t.comment(output.slice(-4000));
});
