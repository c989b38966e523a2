import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Operation, StackJobDoc } from '@pds/shared';
import t from 'tap';
import { fileSetManifest, readStream, startStack } from './harness.js';

/**
 * A job whose runner vanished without a trace: `running`, started long ago, no heartbeat. This is
 * what a killed runner leaves (crash.test.ts kills a real one); here the reconciler's decision is the subject.
 */
async function lostJob(stack: Awaited<ReturnType<typeof startStack>>, resource: { id: string; stackFqdn: string }, operation: Operation) {
  return stack.models.StackJob.create({
    _id: randomUUID(),
    resourceId: resource.id,
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn: resource.stackFqdn,
    operation,
    status: 'running',
    startedAt: new Date(Date.now() - 60_000),
    runnerId: 'vanished-runner',
  });
}

async function waitForDoc(
  stack: Awaited<ReturnType<typeof startStack>>,
  id: string,
  ready: (doc: StackJobDoc) => boolean,
): Promise<StackJobDoc> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const doc = await stack.models.StackJob.findById(id).lean<StackJobDoc>();
    if (doc && ready(doc)) return doc;
    if (Date.now() > deadline) throw new Error(`job ${id} never got there: ${JSON.stringify(doc)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('a lost preview is retried as a new job that runs; a lost up is not, and the job says why', async (t) => {
  const stack = await startStack(t, { RUNNER_HEARTBEAT_SECONDS: 0.5 });
  const create = async (name: string) =>
    (
      await stack.api.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...stack.auth, 'content-type': 'application/yaml' },
        payload: fileSetManifest(name, join(stack.scratch, name), [{ path: 'a.txt', content: name }]),
      })
    ).json();

  const previewed = await create('retry-preview');
  const preview = await lostJob(stack, previewed, 'preview');
  const lostPreview = await waitForDoc(stack, preview._id, (d) => d.status === 'failed' && Boolean(d.recovery));
  t.match(lostPreview, {
    reason: 'runner_lost',
    retriedBy: String,
    recovery: /retried as job .* \(attempt 2 of 3\): a preview changes no resources/,
  });
  const retry = await waitForDoc(stack, lostPreview.retriedBy!, (d) => ['succeeded', 'failed'].includes(d.status));
  t.match(retry, { operation: 'preview', retryOf: preview._id, attempt: 2, status: 'succeeded', stackFqdn: previewed.stackFqdn });
  const view = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${preview._id}`, headers: stack.auth })).json();
  t.match(view, { retriedBy: retry._id, recovery: /retried as job/ }, 'the API shows the decision');
  const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${retry._id}/stream`);
  t.equal(messages.at(-1)?.status, 'succeeded', 'the retry streams like any job');

  const upped = await create('no-retry-up');
  const up = await lostJob(stack, upped, 'up');
  const lostUp = await waitForDoc(stack, up._id, (d) => d.status === 'failed' && Boolean(d.recovery));
  t.match(lostUp, {
    reason: 'runner_lost',
    recovery: /not retried: a up may have changed resources.*Pulumi lock is cleared before its next run/,
  });
  t.notOk(lostUp.retriedBy);
  t.equal(await stack.models.StackJob.countDocuments({ retryOf: up._id }), 0, 'no job repeats the up');

  const third = await lostJob(stack, previewed, 'refresh');
  await stack.models.StackJob.updateOne({ _id: third._id }, { $set: { attempt: 3 } });
  const exhausted = await waitForDoc(stack, third._id, (d) => d.status === 'failed' && Boolean(d.recovery));
  t.match(exhausted.recovery, /not retried: 3 attempts were lost/);
});
