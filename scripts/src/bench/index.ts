/**
 * `npm run bench`: every benchmark, each printed beside a raw baseline measured in the same run.
 * `BENCH=runner|sandbox|gateway|api|fleet|lines|store` runs one of them.
 */
import { apiBench } from './api-bench.js';
import { fleetBench } from './fleet-bench.js';
import { gatewayBench } from './gateway-bench.js';
import { linesBench } from './lines-bench.js';
import { runnerBench } from './runner-bench.js';
import { sandboxBench } from './sandbox-bench.js';
import { storeBench } from './store-bench.js';

const only = process.env.BENCH;
if (!only || only === 'runner') await runnerBench();
if (!only || only === 'sandbox') await sandboxBench();
if (!only || only === 'gateway') await gatewayBench();
if (!only || only === 'api') await apiBench();
if (!only || only === 'fleet') await fleetBench();
if (!only || only === 'lines') await linesBench();
if (!only || only === 'store') await storeBench();
