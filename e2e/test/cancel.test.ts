import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { fileSetManifest, queueJob, readStream, type StreamedMessage, startStack, TOKEN } from './harness.js';

type Stack = Awaited<ReturnType<typeof startStack>>;

async function createResource(stack: Stack, name: string, files: { path: string; content: string; delayMs?: number }[]) {
  const res = await stack.api.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: fileSetManifest(name, join(stack.scratch, name), files),
  });
  return res.json().id as string;
}

const getJob = async (stack: Stack, id: string) =>
  (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: stack.auth })).json();

/** Follows a job's stream; resolves `started` once Pulumi has begun creating resources. */
function follow(stack: Stack, jobId: string) {
  const messages: StreamedMessage[] = [];
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const done = new Promise<StreamedMessage[]>((resolve, reject) => {
    const socket = new WebSocket(`${stack.gatewayUrl}/v1/jobs/${jobId}/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as StreamedMessage;
      messages.push(message);
      if (message.type === 'event' && message.event?.kind === 'resource' && message.event?.type === 'pulumi-nodejs:dynamic:Resource')
        markStarted();
    });
    socket.on('close', () => resolve(messages));
    socket.on('error', reject);
  });
  return { started, done };
}

t.test('cancelling a running up stops Pulumi, keeps its lines, and leaves the stack usable', async (t) => {
  const stack = await startStack(t, { CANCEL_GRACE_SECONDS: 2 });
  const id = await createResource(stack, 'slow', [{ path: 'slow.txt', content: 'x', delayMs: 60_000 }]);
  const job = await queueJob(stack, id, { operation: 'up' });
  const watch = follow(stack, job.id);
  await watch.started;
  const cancel = await stack.api.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: stack.auth });
  t.equal(cancel.statusCode, 202, 'a running job: 202, the runner is asked');
  const messages = await watch.done;
  t.match(messages.at(-1), { type: 'end', status: 'cancelled', reason: 'cancelled' });
  const done = await getJob(stack, job.id);
  t.equal(done.status, 'cancelled');
  t.ok(done.lastSeq > 0, 'the lines so far are kept');
  t.notOk(existsSync(join(stack.scratch, 'slow', 'slow.txt')), 'the slow file was never written');
  t.equal(
    (await stack.api.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: stack.auth })).statusCode,
    409,
    'an ended job cannot be cancelled',
  );

  await stack.api.inject({
    method: 'PUT',
    url: `/v1/resources/${id}`,
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: fileSetManifest('slow', join(stack.scratch, 'slow'), [{ path: 'slow.txt', content: 'x' }]),
  });
  const next = await queueJob(stack, id, { operation: 'up' });
  const { messages: after } = await readStream(`${stack.gatewayUrl}/v1/jobs/${next.id}/stream`);
  t.equal(after.at(-1)?.status, 'succeeded', `the next up on the stack succeeds: ${(await getJob(stack, next.id)).result?.error ?? ''}`);
  t.ok(existsSync(join(stack.scratch, 'slow', 'slow.txt')));
});

t.test('a queued job is cancelled at once and never runs', async (t) => {
  const stack = await startStack(t, { CANCEL_GRACE_SECONDS: 1 });
  const id = await createResource(stack, 'busy', [{ path: 'a.txt', content: 'a', delayMs: 60_000 }]);
  const first = await queueJob(stack, id, { operation: 'up' });
  const watchFirst = follow(stack, first.id);
  await watchFirst.started;
  const second = await queueJob(stack, id, { operation: 'refresh' });
  const cancel = await stack.api.inject({ method: 'POST', url: `/v1/jobs/${second.id}/cancel`, headers: stack.auth });
  t.equal(cancel.statusCode, 200, 'a queued job: 200, cancelled at once');
  t.match(cancel.json(), { status: 'cancelled', reason: 'cancelled', result: { status: 'cancelled' } });
  const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${second.id}/stream`);
  t.match(messages, [{ type: 'end', status: 'cancelled', lastSeq: 0 }]);
  await stack.api.inject({ method: 'POST', url: `/v1/jobs/${first.id}/cancel`, headers: stack.auth });
  await watchFirst.done;
  // The stack goes on to the next job in its line: one queued now runs to its end, and the cancelled one did not run before it.
  const third = await queueJob(stack, id, { operation: 'preview' });
  const { messages: thirdMessages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${third.id}/stream`);
  t.equal(thirdMessages.at(-1)?.type, 'end', 'the next job on the stack runs');
  const again = await getJob(stack, second.id);
  t.equal(again.status, 'cancelled', 'it stays cancelled once the stack is free');
  t.notOk(again.startedAt, 'and it never started');
});

t.test('a job that outlives its timeoutSeconds ends cancelled with reason timeout', async (t) => {
  const stack = await startStack(t, { CANCEL_GRACE_SECONDS: 1 });
  const id = await createResource(stack, 'timeout', [{ path: 'a.txt', content: 'a', delayMs: 60_000 }]);
  const job = await queueJob(stack, id, { operation: 'up', timeoutSeconds: 3 });
  const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${job.id}/stream`);
  t.match(messages.at(-1), { type: 'end', status: 'cancelled', reason: 'timeout' });
  t.match((await getJob(stack, job.id)).result.error, /timed out after 3 s/);
});

t.test('a runner shutting down cancels its running job cleanly: nothing is left running', async (t) => {
  const stack = await startStack(t, { CANCEL_GRACE_SECONDS: 1 });
  const id = await createResource(stack, 'drain', [{ path: 'a.txt', content: 'a', delayMs: 60_000 }]);
  const job = await queueJob(stack, id, { operation: 'up' });
  const watch = follow(stack, job.id);
  await watch.started;
  await stack.runner.close();
  const done = await getJob(stack, job.id);
  t.equal(done.status, 'cancelled');
  t.equal(done.reason, 'shutdown');
  t.match((await watch.done).at(-1), { type: 'end', status: 'cancelled', reason: 'shutdown' });
});

t.test('with queue policy latest, a new up supersedes the ups still waiting; only the newest runs', async (t) => {
  const stack = await startStack(t, { CANCEL_GRACE_SECONDS: 1 });
  const id = await createResource(stack, 'latest', [{ path: 'a.txt', content: 'a', delayMs: 60_000 }]);
  const busy = await queueJob(stack, id, { operation: 'up' });
  const watchBusy = follow(stack, busy.id);
  await watchBusy.started;
  const first = await queueJob(stack, id, { operation: 'up', queuePolicy: 'latest' });
  const refresh = await queueJob(stack, id, { operation: 'refresh', queuePolicy: 'latest' });
  const second = await queueJob(stack, id, { operation: 'up', queuePolicy: 'latest' });
  const third = await queueJob(stack, id, { operation: 'up', queuePolicy: 'latest' });
  t.match(await getJob(stack, first.id), { status: 'cancelled', reason: 'superseded', result: { error: new RegExp(second.id) } });
  t.match(await getJob(stack, second.id), { status: 'cancelled', reason: 'superseded', result: { error: new RegExp(third.id) } });
  t.match(await getJob(stack, third.id), { status: 'queued', position: 1, blockedBy: busy.id }, 'the newest up waits behind the refresh');
  t.equal((await getJob(stack, refresh.id)).status, 'queued', 'only ups are superseded');
  await stack.api.inject({
    method: 'PUT',
    url: `/v1/resources/${id}`,
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: fileSetManifest('latest', join(stack.scratch, 'latest'), [{ path: 'a.txt', content: 'a' }]),
  });
  await stack.api.inject({ method: 'POST', url: `/v1/jobs/${busy.id}/cancel`, headers: stack.auth });
  await watchBusy.done;
  const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${third.id}/stream`);
  t.match(messages.at(-1), { type: 'end', status: 'succeeded' }, 'the newest up ran');
  t.equal((await getJob(stack, third.id)).resourceVersion, 2, 'and recorded the manifest version it ran');
  t.equal((await getJob(stack, refresh.id)).status === 'queued', false, 'the refresh ran before it');
});
