/**
 * `npm run bench`: every benchmark, each printed beside a raw baseline measured in the same run.
 * `BENCH=runner|sandbox|gateway|api|fleet|fairness|lines|store|console` runs one of them; `BENCH_SMOKE=1` runs them
 * tiny (stats.ts), as the test suite does.
 */
import { apiBench } from './api-bench.js';
import { consoleBench } from './console-bench.js';
import { fairnessBench } from './fairness-bench.js';
import { fleetBench } from './fleet-bench.js';
import { gatewayBench } from './gateway-bench.js';
import { linesBench } from './lines-bench.js';
import { runnerBench } from './runner-bench.js';
import { sandboxBench } from './sandbox-bench.js';
import { storeBench } from './store-bench.js';

import { withinLimit } from './stats.js';

/** Each bench and how long it may take, whole (a smoke run: a tenth, at least two minutes). */
const BENCHES: [string, number, () => Promise<void>][] = [
  ['runner', 300, runnerBench],
  ['sandbox', 300, sandboxBench],
  ['gateway', 300, gatewayBench],
  ['api', 180, apiBench],
  ['fleet', 300, fleetBench],
  ['fairness', 600, fairnessBench],
  ['lines', 600, linesBench],
  ['store', 1800, storeBench],
  ['console', 300, consoleBench],
];

const only = process.env.BENCH;
if (only && !BENCHES.some(([name]) => name === only))
  throw new Error(`BENCH=${only}: not one of ${BENCHES.map(([name]) => name).join(', ')}`);
for (const [name, limitSeconds, bench] of BENCHES) if (!only || only === name) await withinLimit(name, limitSeconds, bench);
