import t from 'tap';
import { mapBounded } from '../src/isolation/bounded.js';

t.test('mapBounded keeps the order and never has more than its limit in flight', async (t) => {
  let inFlight = 0;
  let most = 0;
  const items = Array.from({ length: 100 }, (_, i) => i);
  const results = await mapBounded(items, 7, async (i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    return i * 2;
  });
  t.same(
    results,
    items.map((i) => i * 2),
  );
  t.equal(most, 7);
  t.same(await mapBounded([], 7, async () => 1), [], 'nothing to map');
});

t.test('mapBounded fails with the first error', async (t) => {
  await t.rejects(
    mapBounded([1, 2, 3], 2, async (i) => {
      if (i === 2) throw new Error('EMFILE');
      return i;
    }),
    /EMFILE/,
  );
});

t.test('after a failure mapBounded starts nothing more, and answers only once the calls in flight ended', async (t) => {
  const started: number[] = [];
  let inFlight = 0;
  const failed = mapBounded(
    Array.from({ length: 50 }, (_, i) => i),
    4,
    async (i) => {
      started.push(i);
      inFlight++;
      await new Promise((r) => setTimeout(r, i === 1 ? 1 : 20));
      inFlight--;
      if (i === 1) throw new Error('EMFILE');
      return i;
    },
  );
  await t.rejects(failed, /EMFILE/);
  t.equal(inFlight, 0, 'nothing still running when it rejects');
  t.ok(started.length < 10, `no new call after the failure (${started.length} started)`);
  await t.rejects(
    mapBounded([1], 0, async (i) => i),
    /positive integer/,
  );
});
