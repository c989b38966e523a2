import t from 'tap';
import { Metrics } from '../src/metrics.js';

t.test('a histogram renders cumulative buckets, +Inf, sum and count per label set', async (t) => {
  const metrics = new Metrics();
  for (const seconds of [0.003, 0.02, 0.02, 3]) metrics.observe('req_seconds', 'durations', { route: '/a' }, seconds, [0.01, 0.1, 1]);
  metrics.observe('req_seconds', 'durations', { route: '/b' }, 0.5, [0.01, 0.1, 1]);
  const text = metrics.render();
  t.match(text, '# TYPE req_seconds histogram');
  t.match(text, 'req_seconds_bucket{route="/a",le="0.01"} 1\n');
  t.match(text, 'req_seconds_bucket{route="/a",le="0.1"} 3\n');
  t.match(text, 'req_seconds_bucket{route="/a",le="1"} 3\n');
  t.match(text, 'req_seconds_bucket{route="/a",le="+Inf"} 4\n');
  t.match(text, 'req_seconds_count{route="/a"} 4\n');
  t.match(text, /req_seconds_sum\{route="\/a"\} 3\.043/);
  t.match(text, 'req_seconds_bucket{route="/b",le="1"} 1\n');
});
