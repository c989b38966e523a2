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
