import t from 'tap';
import { ProgressTracker, resourcesAfter } from '../src/run/progress.js';

const step = (state: string, type = 'local:index:File') => ({ kind: 'resource', state, type });

t.test('progress counts steps; the percentage comes from the expected total and only the summary says 100', async (t) => {
  const progress = new ProgressTracker(4);
  t.same(progress.update(step('started', 'pulumi:pulumi:Stack')), { started: 1, done: 0, failed: 0, total: 4, percent: 0 });
  t.equal(progress.update(step('started', 'pulumi:providers:pulumi-nodejs')), undefined, 'provider steps are not counted');
  progress.update(step('started'));
  t.same(progress.update(step('done')), { started: 2, done: 1, failed: 0, total: 4, percent: 25 });
  t.same(progress.update(step('failed')), { started: 2, done: 1, failed: 1, total: 4, percent: 50 });
  t.equal(progress.update({ kind: 'diagnostic', severity: 'warning' }), undefined, 'other events carry none');
  for (const state of ['started', 'done', 'started', 'done', 'started', 'done']) progress.update(step(state));
  t.same(
    progress.update(step('done', 'pulumi:pulumi:Stack')),
    { started: 5, done: 5, failed: 1, total: 5, percent: 99 },
    'more steps than expected grow the total; before the summary it stays under 100',
  );
  t.same(progress.update({ kind: 'summary' }), { started: 5, done: 5, failed: 1, total: 5, percent: 100 });

  const first = new ProgressTracker(undefined);
  t.same(first.update(step('started')), { started: 1, done: 0, failed: 0 }, 'no estimate: counts only');
});

t.test("a stack's size after a run is its summary without the deletes; a destroy leaves none", async (t) => {
  t.equal(resourcesAfter('up', { create: 2, same: 1, delete: 2 }), 3);
  t.equal(resourcesAfter('refresh', { same: 4 }), 4);
  t.equal(resourcesAfter('destroy', { delete: 4 }), 0);
  t.equal(resourcesAfter('up', {}), undefined, 'no summary: unknown');
  t.equal(resourcesAfter('preview', { create: 2 }), undefined, 'a preview changes no state');
});
