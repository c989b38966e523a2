/** `npm run bench`: every benchmark, each printed beside a raw baseline measured in the same run. */
import { gatewayBench } from './gateway-bench.js';
import { runnerBench } from './runner-bench.js';

await runnerBench();
await gatewayBench();
