import { startLocalRedis } from '@pds/devkit';
import { BOOTSTRAP_PRINCIPAL, hashToken, issueStreamTicket, jobChannel, lineStore, storeApiToken } from '@pds/shared';
import t from 'tap';
import WebSocket from 'ws';
import { startGateway, TOKEN } from './gateway-harness.js';
import { readStream, until } from './harness.js';

const seqsOf = (messages: { seq?: number }[]) => messages.filter((m) => m.seq !== undefined).map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Reads an SSE response into messages until the server ends it. */
async function readSse(response: Response) {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const fields = Object.fromEntries(
        block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      );
      return { id: fields.id, event: fields.event, data: JSON.parse(fields.data as string) };
    });
}

/** How the gateway answers a WebSocket upgrade: 101 when it upgrades, else the HTTP status and message it refused with. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; message?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.close();
      resolve({ status: 101 });
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, message: JSON.parse(body || '{}').message }));
    });
    socket.once('error', (err) => (err.message.startsWith('Unexpected server response') ? undefined : reject(err)));
  });
}

t.test('a refused upgrade is answered over HTTP before any socket exists; bad requests say what is wrong', async (t) => {
  const { gateway, job } = await startGateway(t);
  const { ws, http } = await gateway();
  const { jobId } = await job();
  t.match(await upgrade(`${ws}/v1/jobs/${jobId}/stream`), { status: 401, message: /missing bearer token/ }, 'no token: 401');
  t.match(await upgrade(`${ws}/v1/jobs/${jobId}/stream`, { authorization: 'Bearer wrong-token-wrong-token' }), {
    status: 401,
    message: /not valid/,
  });
  t.match(await upgrade(`${ws}/v1/jobs/${jobId}/stream?token=${TOKEN}`), { status: 401 }, 'a token in the URL is not a way in');
  const unknown = await readStream(`${ws}/v1/jobs/no-such-job/stream`, TOKEN);
  t.equal(unknown.code, 4404, 'an unknown job: 4404');
  t.match(unknown.reason, /not found/);
  t.match(await upgrade(`${ws}/v1/jobs/${jobId}/stream?from=-1`, { authorization: `Bearer ${TOKEN}` }), { status: 400, message: /from/ });
  t.match(await upgrade(`${ws}/v1/jobs/${jobId}/stream?form=1`, { authorization: `Bearer ${TOKEN}` }), {
    status: 400,
    message: /form|additional/,
  });
  t.equal(
    (await fetch(`${http}/v1/jobs/${jobId}/stream`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
    426,
    'plain HTTP is told to upgrade or ask for SSE',
  );
});

t.test('API tokens of any role may watch; a revoked one is refused', async (t) => {
  const { gateway, job, models } = await startGateway(t);
  const { ws } = await gateway();
  const { jobId, finish } = await job();
  const viewer = await storeApiToken(models, { name: 'wall-screen', role: 'viewer', createdBy: 'test' });
  const revoked = await storeApiToken(models, { name: 'old', role: 'admin', createdBy: 'test', revokedAt: new Date() });
  const reading = readStream(`${ws}/v1/jobs/${jobId}/stream`, viewer.token);
  await finish();
  const watched = await reading;
  t.equal(watched.code, 1000, 'a viewer token streams the job to its end');
  t.match(await upgrade(`${ws}/v1/jobs/${jobId}/stream`, { authorization: `Bearer ${revoked.token}` }), {
    status: 401,
    message: /revoked/,
  });
});

t.test('Server-Sent Events carry the same stream (a browser opens it with a stream ticket), and Last-Event-ID resumes it', async (t) => {
  const { gateway, job, command } = await startGateway(t);
  const { http, hub } = await gateway();
  const j = await job();
  for (let i = 1; i <= 10; i++) j.sink.line('stdout', `line ${i}`);
  const { ticket } = await issueStreamTicket(command, { principal: BOOTSTRAP_PRINCIPAL, tokenHash: hashToken(TOKEN) }, { jobId: j.jobId });
  const reading = fetch(`${http}/v1/jobs/${j.jobId}/stream?from=0&ticket=${ticket}`, { headers: { accept: 'text/event-stream' } }).then(
    readSse,
  );
  await until(() => hub.subscriptions === 1, 'the gateway follows the job'); // the rest arrives live
  for (let i = 11; i <= 20; i++) j.sink.line('stderr', `line ${i}`);
  await j.finish();
  const events = await reading;
  t.equal(events[0]?.event, 'status');
  t.same(
    events.filter((e) => e.event === 'line').map((e) => Number(e.id)),
    range(1, 20),
  );
  t.same(events.at(-1)?.data, {
    type: 'end',
    jobId: j.jobId,
    status: 'succeeded',
    exitCode: 0,
    summary: { create: 1 },
    lastSeq: 20,
    ts: events.at(-1)?.data.ts,
  });
  const resumed = await readSse(
    await fetch(`${http}/v1/jobs/${j.jobId}/stream`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${TOKEN}`, 'last-event-id': '15' },
    }),
  );
  t.same(
    resumed.filter((e) => e.event === 'line').map((e) => Number(e.id)),
    range(16, 20),
  );
});

t.test('a job whose lines were swept as old history: error 4410 saying so, not a stream that waits for lines', async (t) => {
  const { gateway, job, models } = await startGateway(t);
  const { ws } = await gateway();
  const j = await job();
  for (let i = 1; i <= 3; i++) j.sink.line('stdout', `line ${i}`);
  await j.finish();
  await models.JobLineChunk.deleteMany({ jobId: j.jobId });
  await models.StackJob.updateOne({ _id: j.jobId }, { $set: { linesSweptAt: new Date('2026-11-01T00:00:00Z') } });
  const swept = await readStream(`${ws}/v1/jobs/${j.jobId}/stream`, TOKEN);
  t.equal(swept.code, 4410);
  t.match(swept.messages, [{ type: 'error', code: 4410, message: /removed as old history on 2026-11-01.*GET \/v1\/jobs\// }]);
  const caughtUp = await readStream(`${ws}/v1/jobs/${j.jobId}/stream?from=3`, TOKEN);
  t.match(caughtUp.messages, [{ type: 'end', lastSeq: 3 }], 'a client that has every line gets the end as before');
});

t.test('one socket follows several jobs and stops following one on unsubscribe', async (t) => {
  const { gateway, job } = await startGateway(t);
  const { ws } = await gateway();
  const [a, b, c, d] = [await job(), await job(), await job(), await job()];
  const socket = await openSocket(`${ws}/v1/stream`);
  t.teardown(() => socket.close());
  const got: Record<string, { seq?: number; type: string; code?: number }[]> = {};
  socket.on('message', (data) => {
    const message = JSON.parse(String(data));
    (got[message.jobId] ??= []).push(message);
  });
  socket.send(JSON.stringify({ type: 'subscribe', jobId: a.jobId, from: 0 }));
  socket.send(JSON.stringify({ type: 'subscribe', jobId: b.jobId, from: 2 }));
  socket.send(JSON.stringify({ type: 'subscribe', jobId: c.jobId }));
  socket.send(JSON.stringify({ type: 'subscribe', jobId: 'missing' }));
  await until(() => [a, b, c].every((j) => got[j.jobId]?.length) && got.missing !== undefined, 'each subscription answered');
  socket.send(JSON.stringify({ type: 'unsubscribe', jobId: c.jobId }));
  // A socket's messages are handled in order: once d's subscription answers, c's unsubscribe is done.
  socket.send(JSON.stringify({ type: 'subscribe', jobId: d.jobId }));
  await until(() => Boolean(got[d.jobId]?.length), 'the unsubscribe handled');
  for (let i = 0; i < 5; i++) {
    a.sink.line('stdout', `a${i}`);
    b.sink.line('stdout', `b${i}`);
    c.sink.line('stdout', `c${i}`);
  }
  await Promise.all([a.finish(), b.finish(), c.finish()]);
  await until(() => got[a.jobId]?.at(-1)?.type === 'end' && got[b.jobId]?.at(-1)?.type === 'end', 'both ends');
  t.same(seqsOf(got[a.jobId] ?? []), range(1, 5));
  t.equal(got[a.jobId]?.at(-1)?.type, 'end');
  t.same(seqsOf(got[b.jobId] ?? []), range(3, 5), 'each job from its own seq');
  t.equal(got[b.jobId]?.at(-1)?.type, 'end');
  t.same(seqsOf(got[c.jobId] ?? []), [], 'nothing after unsubscribe');
  t.match(got.missing, [{ type: 'error', code: 4404 }], 'an unknown job is an error message, not a closed socket');
  t.equal(socket.readyState, WebSocket.OPEN);
});

t.test('a client that does not read is closed with a reason and does not slow the others', async (t) => {
  const { gateway, job } = await startGateway(t, { maxBufferedBytes: 1024 * 1024 });
  const { ws, hub } = await gateway();
  const j = await job();
  const slow = await openSocket(`${ws}/v1/jobs/${j.jobId}/stream`);
  const slowClosed = new Promise<[number, string]>((resolve) => slow.on('close', (code, reason) => resolve([code, String(reason)])));
  // Stop reading from the socket: the server's send buffer for this client fills up.
  (slow as unknown as { _socket: { pause(): void } })._socket.pause();
  const fast = readStream(`${ws}/v1/jobs/${j.jobId}/stream`, TOKEN);
  await until(() => hub.subscriptions === 1, 'the gateway follows the job');
  // Paced, as a real run prints: the reading client keeps up, the paused one falls behind by megabytes.
  for (let i = 1; i <= 8000; i++) {
    j.sink.line('stdout', `${i} ${'x'.repeat(2000)}`);
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await j.finish();
  const { messages } = await fast;
  t.same(seqsOf(messages), range(1, 8000), 'the reading client got everything');
  (slow as unknown as { _socket: { resume(): void } })._socket.resume();
  const [code, reason] = await slowClosed;
  t.equal(code, 1008);
  t.match(reason, /not reading fast enough/);
});

t.test('a gateway holds one Redis subscription per job, however many clients watch it', async (t) => {
  const { gateway, job, command } = await startGateway(t, { maxConnectionsPerToken: 100 });
  const [one, two] = [await gateway(), await gateway()];
  const j = await job();
  const sockets = await Promise.all(
    Array.from({ length: 100 }, (_, i) => openSocket(`${(i % 2 ? one : two).ws}/v1/jobs/${j.jobId}/stream`)),
  );
  await until(() => one.hub.subscriptions === 1 && two.hub.subscriptions === 1, 'both gateways follow the job');
  const [, count] = (await command.pubsub('NUMSUB', jobChannel(j.jobId))) as [string, number];
  t.equal(Number(count), 2, '100 clients on two gateways: 2 subscriptions');
  t.equal(one.hub.subscriptions, 1);
  for (const socket of sockets) socket.close();
  await until(() => one.hub.subscriptions + two.hub.subscriptions === 0, 'the subscriptions released');
  t.pass('released when the clients leave');
});

t.test('when Redis goes away and comes back, a live client still gets every line once', async (t) => {
  const redis = await startLocalRedis();
  let current = redis;
  t.teardown(() => current.stop());
  const { gateway, job, models, command } = await startGateway(t, { redisUrl: redis.url });
  const { ws, hub } = await gateway();
  const j = await job();
  const reading = readStream(`${ws}/v1/jobs/${j.jobId}/stream`, TOKEN);
  await until(() => hub.subscriptions === 1, 'the gateway follows the job');
  for (let i = 1; i <= 300; i++) j.sink.line('stdout', `before ${i}`);
  await until(() => hub.recent(j.jobId, 300, 300).length === 1, 'the first 300 lines heard live', 30_000);
  await redis.stop();
  for (let i = 301; i <= 600; i++) j.sink.line('stdout', `during ${i}`);
  const store = lineStore(models);
  await until(async () => (await store.read(j.jobId, 599, 1)).length === 1, 'the lines written while Redis was away stored');
  current = await startLocalRedis({ port: redis.port });
  // Clients reconnect with a back-off: the gateway follows the job again once its subscription is back.
  const channel = jobChannel(j.jobId);
  await until(async () => Number(((await command.pubsub('NUMSUB', channel)) as [string, number])[1]) === 1, 'the gateway subscribed again');
  for (let i = 601; i <= 900; i++) j.sink.line('stdout', `after ${i}`);
  await j.finish();
  const { messages, code } = await reading;
  t.same(seqsOf(messages), range(1, 900));
  t.equal(messages.at(-1)?.type, 'end');
  t.equal(code, 1000);
});
