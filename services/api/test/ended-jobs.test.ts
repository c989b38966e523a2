import { once } from 'node:events';
import { startLocalRedis } from '@pds/devkit';
import { announceJobsAmended, JOB_AMENDED_CHANNEL } from '@pds/shared';
import { Redis } from 'ioredis';
import t from 'tap';
import { EndedJobViews } from '../src/services/ended-jobs.js';

/** Resolves once the subscriber has handled an announcement (its listeners run in order, the cache's first). */
async function announced(subscriber: Redis, publisher: Redis, id: string) {
  const heard = once(subscriber, 'message');
  await announceJobsAmended(publisher, [id]);
  await heard;
}

t.test('views of ended jobs are dropped when a job is announced as changed, and kept only while that can be heard', async (t) => {
  const server = await startLocalRedis();
  t.teardown(() => server.stop());
  const subscriber = new Redis(server.url, { maxRetriesPerRequest: null });
  const publisher = new Redis(server.url);
  t.teardown(() => {
    subscriber.disconnect();
    publisher.disconnect();
  });
  const views = new EndedJobViews<{ status: string }>(subscriber);
  await views.start();
  t.teardown(() => views.stop());

  views.set('a', { status: 'failed' }, views.mark());
  t.same(views.get('a'), { status: 'failed' }, 'kept while subscribed');
  await announced(subscriber, publisher, 'a');
  t.equal(views.get('a'), undefined, 'dropped when announced');

  const before = views.mark();
  await announced(subscriber, publisher, 'other');
  views.set('a', { status: 'failed' }, before);
  t.equal(views.get('a'), undefined, 'a view read before an announcement arrived is not kept');

  views.set('a', { status: 'failed' }, views.mark());
  const closed = once(subscriber, 'close');
  subscriber.disconnect(true);
  await closed;
  t.equal(views.get('a'), undefined, 'everything is dropped when the subscription is lost');
  views.set('b', { status: 'succeeded' }, views.mark());
  t.equal(views.get('b'), undefined, 'nothing is kept while it is lost');

  if (subscriber.status !== 'ready') await once(subscriber, 'ready');
  // Commands run in order on the connection: once this answers, the cache's own resubscription has.
  await subscriber.subscribe(JOB_AMENDED_CHANNEL);
  views.set('b', { status: 'succeeded' }, views.mark());
  t.same(views.get('b'), { status: 'succeeded' }, 'kept again once subscribed again');
});

t.test('without a subscriber nothing is cached; a view past its age is not served', async (t) => {
  const none = new EndedJobViews<string>(undefined);
  await none.start();
  none.set('a', 'view', none.mark());
  t.equal(none.get('a'), undefined);

  const server = await startLocalRedis();
  t.teardown(() => server.stop());
  const subscriber = new Redis(server.url, { maxRetriesPerRequest: null });
  t.teardown(() => subscriber.disconnect());
  const aged = new EndedJobViews<string>(subscriber, 10, -1);
  await aged.start();
  t.teardown(() => aged.stop());
  aged.set('a', 'view', aged.mark());
  t.equal(aged.size, 1, 'kept');
  t.equal(aged.get('a'), undefined, 'but older than its age limit');
});
