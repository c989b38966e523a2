import t from 'tap';
import { SingleFlight } from '../src/services/single-flight.js';

/** A read whose answer the test gives when it likes: the reads started, in order, and how to finish each. */
function controlledReads() {
  const started: { finish: (value: string) => void; fail: (err: Error) => void }[] = [];
  const read = () =>
    new Promise<string>((resolve, reject) => {
      started.push({ finish: resolve, fail: reject });
    });
  return { started, read };
}

t.test('callers asking while a read is under way share the next read, never one that began before they asked', async (t) => {
  const flight = new SingleFlight<string>();
  const { started, read } = controlledReads();
  const first = flight.run('job-1', read);
  const second = flight.run('job-1', read);
  const third = flight.run('job-1', read);
  t.equal(started.length, 1, 'one read under way for the three');
  started[0]?.finish('before');
  t.equal(await first, 'before');
  t.equal(started.length, 2, 'the second and third asked after the first read began: one more read for both');
  started[1]?.finish('after');
  t.same(await Promise.all([second, third]), ['after', 'after']);
  const other = flight.run('job-2', read);
  t.equal(started.length, 3, 'another key reads on its own');
  started[2]?.finish('other');
  t.equal(await other, 'other');
  const again = flight.run('job-1', read);
  t.equal(started.length, 4, 'once settled nothing is kept: a later caller reads anew');
  started[3]?.finish('later');
  t.equal(await again, 'later');
});

t.test('a failed read fails its callers only, and the queued read still runs', async (t) => {
  const flight = new SingleFlight<string>();
  const { started, read } = controlledReads();
  const first = flight.run('job', read);
  const second = flight.run('job', read);
  started[0]?.fail(new Error('store away'));
  await t.rejects(first, /store away/);
  t.equal(started.length, 2, 'the caller who asked meanwhile gets a read of its own');
  started[1]?.finish('back');
  t.equal(await second, 'back');
});

t.test('a read that throws before it returns a promise fails its caller and leaves nothing behind', async (t) => {
  const flight = new SingleFlight<string>();
  await t.rejects(
    flight.run('job', () => {
      throw new Error('bad id');
    }),
    /bad id/,
  );
  t.equal(await flight.run('job', async () => 'read anew'), 'read anew', 'the key is free for the next caller');
});
