import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Progress } from '@pds/shared';
import { createResource, fileSetManifest, queueJob, readStream, replaceResource, startStack, storedLines } from './harness.js';

/** The progress carried by a stream's resource and summary events, in order. */
function progressOf(messages: { type: string; event?: Record<string, unknown> }[]): Progress[] {
  return messages.filter((m) => m.type === 'event' && m.event?.progress).map((m) => m.event?.progress as Progress);
}

function manifest(name: string, directory: string, files: { path: string; content: string }[]): string {
  const list = files.map((f) => `    - path: ${JSON.stringify(f.path)}\n      content: ${JSON.stringify(f.content)}`).join('\n');
  return `apiVersion: deploy.pulumi.dev/v1
kind: LocalFileSet
metadata:
  name: ${name}
  labels:
    team: platform
spec:
  directory: ${directory}
  files:
${list}
`;
}

t.test('a real pulumi up through API, queue, runner and WebSocket deploys the files', async (t) => {
  const stack = await startStack(t);
  const dir = join(stack.scratch, 'deployed');
  const created = await stack.api.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: manifest('demo-files', dir, [
      { path: 'hello.txt', content: 'hello from pulumi' },
      { path: 'conf/app.ini', content: 'mode=1' },
    ]),
  });
  t.equal(created.statusCode, 201, created.body);
  const resource = created.json();
  t.equal(resource.stackFqdn, 'organization/local-file-set/demo-files');

  const queued = await stack.api.inject({
    method: 'POST',
    url: `/v1/resources/${resource.id}/jobs`,
    headers: stack.auth,
    payload: { operation: 'up' },
  });
  t.equal(queued.statusCode, 202, queued.body);
  const job = queued.json();
  t.equal(job.status, 'queued');

  const { messages, code } = await readStream(`${stack.gatewayUrl}/v1/jobs/${job.id}/stream?from=0`);
  t.equal(code, 1000, 'the server closes normally after the end message');
  const end = messages.at(-1);
  t.equal(end?.type, 'end');
  t.equal(end?.status, 'succeeded', JSON.stringify(messages.slice(-5)));
  t.equal(messages[0]?.type, 'status', 'the stream starts with the job status');
  const body = messages.filter((m) => m.seq !== undefined);
  t.same(
    body.map((m) => m.seq),
    Array.from({ length: body.length }, (_, i) => i + 1),
    'seq runs 1..n with no gap and no duplicate',
  );
  t.equal(end?.lastSeq, body.length);
  const text = body
    .filter((m) => m.type === 'line')
    .map((m) => m.text)
    .join('\n');
  t.match(text, /Updating \(organization\/local-file-set\/demo-files\)|Updating/, "Pulumi's own progress lines are streamed");
  t.match(text, /2 created|3 created/);
  t.ok(
    body.some((m) => m.type === 'event' && m.event?.kind === 'resource' && m.event?.state === 'done'),
    'engine events are streamed beside the lines',
  );

  const counts = progressOf(body);
  t.same(counts.at(-1), { started: 3, done: 3, failed: 0, total: 3, percent: 100 }, 'the summary ends the count at 100 %');
  t.ok(
    counts.slice(0, -1).every((p) => p.percent === undefined && p.total === undefined),
    "a stack's first run counts its steps, with no percentage (no total is known yet)",
  );
  t.ok(
    counts.every((p, i) => i === 0 || p.done >= (counts[i - 1] as Progress).done),
    'the count of steps done never goes down',
  );

  t.equal(readFileSync(join(dir, 'hello.txt'), 'utf8'), 'hello from pulumi');
  t.equal(readFileSync(join(dir, 'conf/app.ini'), 'utf8'), 'mode=1');

  const read = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: stack.auth })).json();
  t.equal(read.status, 'succeeded');
  t.equal(read.result.exitCode, 0);
  t.equal(read.result.outputs.directory, dir);
  t.same(
    read.result.outputs.files.map((f: { path: string }) => f.path),
    ['hello.txt', 'conf/app.ini'],
  );
  t.match(read.result.outputs.files[0].sha256, /^[0-9a-f]{64}$/);
  t.same(read.result.summary, { create: 3 });
  t.ok(read.startedAt && read.finishedAt, 'start and finish are stamped');

  t.equal((await storedLines(stack, job.id)).length, body.length, 'every streamed message is persisted');

  t.test('a second up with a changed manifest updates the files', async (t) => {
    const replaced = await replaceResource(
      stack,
      resource.id,
      manifest('demo-files', dir, [{ path: 'hello.txt', content: 'hello again' }]),
    );
    t.equal(replaced.version, 2);
    const second = await queueJob(stack, resource.id);
    t.equal(second.resourceVersion, 2, 'the job records the manifest version it runs');
    const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${second.id}/stream`);
    t.equal(messages.at(-1)?.status, 'succeeded');
    t.equal(readFileSync(join(dir, 'hello.txt'), 'utf8'), 'hello again');
    t.notOk(existsSync(join(dir, 'conf/app.ini')), 'the file dropped from the manifest is deleted');
    const done = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${second.id}`, headers: stack.auth })).json();
    t.same(done.result.summary, { update: 1, delete: 1, same: 1 });
    const counts = progressOf(messages);
    t.same(counts.at(-1), { started: 3, done: 3, failed: 0, total: 3, percent: 100 });
    const before = counts.slice(0, -1);
    t.ok(before.length >= 3);
    t.ok(
      before.every((p) => p.total === 3 && (p.percent as number) <= 99),
      'the stack held 3 resources after its last run: that is the total, and the end alone says 100 %',
    );
    t.same(
      before.map((p) => p.percent),
      before.map((p) => Math.min(99, Math.floor((p.done * 100) / 3))),
      'percent = steps done of the total, held at 99 until the summary',
    );
    t.ok(before.some((p) => (p.percent as number) > 0));
  });

  t.test('a client joining after the end gets the full replay and the end message', async (t) => {
    const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${job.id}/stream?from=3`);
    t.equal(messages[0]?.seq, 4);
    t.equal(messages.length - 1, body.length - 3, 'no status message for an ended job: replay, then end');
    t.equal(messages.at(-1)?.type, 'end');
  });
});

t.test("a program that fails makes the job failed with Pulumi's error text", async (t) => {
  const stack = await startStack(t);
  const created = await stack.api.inject({
    method: 'POST',
    url: '/v1/resources',
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: manifest('escaping', join(stack.scratch, 'x'), [{ path: '../outside.txt', content: 'no' }]),
  });
  t.equal(created.statusCode, 201, created.body);
  const job = (
    await stack.api.inject({
      method: 'POST',
      url: `/v1/resources/${created.json().id}/jobs`,
      headers: stack.auth,
      payload: { operation: 'up' },
    })
  ).json();
  const { messages } = await readStream(`${stack.gatewayUrl}/v1/jobs/${job.id}/stream`);
  t.equal(messages.at(-1)?.status, 'failed');
  const read = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: stack.auth })).json();
  t.equal(read.status, 'failed');
  t.not(read.result.exitCode, 0);
  t.match(read.result.error, /spec\.files\[0\]\.path "\.\.\/outside\.txt" must stay inside spec\.directory/);
  t.notOk(existsSync(join(stack.scratch, 'outside.txt')));
});

t.test('GET of a running job shows its progress: counts on a first run, a percentage once the stack size is known', async (t) => {
  const stack = await startStack(t);
  const dir = join(stack.scratch, 'watched');
  const files = (content: string) => [
    { path: 'slow.txt', content, delayMs: 2_500 },
    { path: 'quick.txt', content },
  ];
  const resource = await createResource(stack, fileSetManifest('watched', dir, files('one')));

  /** Polls the job through the API while it runs; returns every progress seen, then the ended view. */
  async function watch(jobId: string) {
    const seen: Progress[] = [];
    for (;;) {
      const view = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${jobId}`, headers: stack.auth })).json();
      if (view.status === 'running' && view.progress) seen.push(view.progress as Progress);
      if (view.result) return { seen, view };
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const first = await watch((await queueJob(stack, resource.id)).id);
  t.equal(first.view.status, 'succeeded');
  t.ok(first.seen.length > 0, 'the running job showed its progress');
  t.ok(
    first.seen.every((p) => p.started >= 1 && p.done <= p.started && p.percent === undefined),
    `a first run: counts only (${JSON.stringify(first.seen.at(-1))})`,
  );
  t.notOk(first.view.progress, 'an ended job shows its summary instead');
  t.same(first.view.result.summary, { create: 3 });

  await replaceResource(stack, resource.id, fileSetManifest('watched', dir, files('two')));
  const second = await watch((await queueJob(stack, resource.id)).id);
  t.equal(second.view.status, 'succeeded');
  const last = second.seen.at(-1);
  t.ok(last && last.total === 3 && typeof last.percent === 'number' && last.percent < 100, `total known: ${JSON.stringify(last)}`);
  t.equal(readFileSync(join(dir, 'slow.txt'), 'utf8'), 'two');
});
