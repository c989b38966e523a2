/** `npm run bench`: every benchmark, each printed beside a raw baseline measured in the same run. */
import { gatewayBench } from './gateway-bench.js';

await gatewayBench();
