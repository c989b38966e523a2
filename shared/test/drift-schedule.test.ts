import t from 'tap';
import { cronIntervalSeconds, driftSpreadMs } from '../src/drift-schedule.js';

const ids = Array.from({ length: 200 }, (_, i) => `resource-${i}`);

t.test('a drift check’s spread: the same per resource, within DRIFT_SPREAD_SECONDS and a tenth of the interval', async (t) => {
  t.equal(cronIntervalSeconds('0 * * * *'), 3_600);
  const hourly = ids.map((id) => driftSpreadMs(id, '0 * * * *', 300));
  t.ok(
    hourly.every((ms) => ms >= 0 && ms < 300_000),
    'hourly: within 300 s',
  );
  t.ok(new Set(hourly.map((ms) => Math.floor(ms / 10_000))).size >= 25, 'spread over the window (30 ten-second buckets), not bunched');
  t.same(
    ids.map((id) => driftSpreadMs(id, '0 * * * *', 300)),
    hourly,
    'the same every time',
  );
  t.ok(
    ids.every((id) => driftSpreadMs(id, '* * * * *', 300) < 6_000),
    'every minute: within a tenth of it (6 s)',
  );
  t.ok(
    ids.every((id) => driftSpreadMs(id, '* * * * * *', 300) === 0),
    'every second: a window under a second, no wait',
  );
  t.ok(
    ids.every((id) => driftSpreadMs(id, '0 * * * *', 0) === 0),
    'DRIFT_SPREAD_SECONDS 0: none',
  );
});
