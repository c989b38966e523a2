import { BOOTSTRAP_PRINCIPAL, createLogger, createRedis, hashToken, issueStreamTicket, storeApiToken, streamTicketKey } from '@pds/shared';
import { connect } from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { MAX_LINE_CHARS } from '@pds/runner';
import { RECENT_BYTES, streamJob, SubscriptionHub } from '@pds/stream-gateway';
import { startGateway, TOKEN } from './gateway-harness.js';

const admin = { principal: BOOTSTRAP_PRINCIPAL, tokenHash: hashToken(TOKEN) };

/** Opens a socket; resolves with it, or with the HTTP status the upgrade was refused with. */
function open(url: string, headers: Record<string, string> = {}): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, response) => resolve(response.statusCode ?? 0));
    socket.once('error', (err) => (err.message.startsWith('Unexpected server response') ? undefined : reject(err)));
  });
}

const closed = (socket: WebSocket) =>
  new Promise<[number, string]>((resolve) => socket.once('close', (code, reason) => resolve([code, String(reason)])));

t.test('a stream ticket opens its own job once, within 60 s, and nothing else', async (t) => {
  const { gateway, job, command } = await startGateway(t);
  const { ws } = await gateway();
  const [a, b] = [await job(), await job()];
  const { ticket } = await issueStreamTicket(command, admin, { jobId: a.jobId });
  const ttl = await command.ttl(streamTicketKey(hashToken(ticket)));
  t.ok(ttl > 0 && ttl <= 60, `kept ${ttl} s at most`);
  t.equal(await open(`${ws}/v1/jobs/${b.jobId}/stream?ticket=${ticket}`), 401, 'not for another job (and used up by trying)');
  const other = await issueStreamTicket(command, admin, { jobId: a.jobId });
  const socket = await open(`${ws}/v1/jobs/${a.jobId}/stream?ticket=${other.ticket}`);
  t.type(socket, WebSocket, 'opens its job');
  (socket as WebSocket).close();
  t.equal(await open(`${ws}/v1/jobs/${a.jobId}/stream?ticket=${other.ticket}`), 401, 'a second use is refused');
  t.equal(
    await open(`${ws}/v1/stream?ticket=${(await issueStreamTicket(command, admin, { jobId: a.jobId })).ticket}`),
    401,
    'a job ticket does not open the multiplexed socket',
  );
  const forSocket = await issueStreamTicket(command, admin, {});
  const multiplexed = await open(`${ws}/v1/stream?ticket=${forSocket.ticket}`);
  t.type(multiplexed, WebSocket, 'a socket ticket opens /v1/stream');
  (multiplexed as WebSocket).close();
  t.equal(await open(`${ws}/v1/stream?ticket=pst_forged`), 401);
});

t.test('a revoked token loses its open sockets within the token cache lifetime, and may not subscribe', async (t) => {
  const { gateway, job, models } = await startGateway(t, { tokenCacheMs: 200 });
  const { ws } = await gateway();
  const j = await job();
  const viewer = await storeApiToken(models, { name: 'wall', role: 'viewer', createdBy: 'test' });
  const headers = { authorization: `Bearer ${viewer.token}` };
  const single = (await open(`${ws}/v1/jobs/${j.jobId}/stream`, headers)) as WebSocket;
  const multi = (await open(`${ws}/v1/stream`, headers)) as WebSocket;
  const lines: unknown[] = [];
  multi.on('message', (data) => lines.push(JSON.parse(String(data))));
  const closes = Promise.all([closed(single), closed(multi)]);
  await models.ApiToken.updateOne({ id: viewer.doc.id }, { $set: { revokedAt: new Date() } });
  const began = Date.now();
  const [[singleCode, reason], [multiCode]] = await closes;
  t.equal(singleCode, 4401);
  t.match(reason, /revoked/);
  t.equal(multiCode, 4401);
  t.ok(Date.now() - began < 2_000, `closed ${Date.now() - began} ms after the revocation`);
  t.same(lines, [], 'nothing was streamed to the multiplexed socket');
});

t.test('a subscribe is authorised per message: once the token is revoked the socket closes instead of streaming', async (t) => {
  const { gateway, job, models } = await startGateway(t, { tokenCacheMs: 60_000 });
  const { ws, app } = await gateway();
  const j = await job();
  j.sink.line('stdout', 'secret deployment output');
  const viewer = await storeApiToken(models, { name: 'wall', role: 'viewer', createdBy: 'test' });
  const socket = (await open(`${ws}/v1/stream`, { authorization: `Bearer ${viewer.token}` })) as WebSocket;
  const lines: { type: string }[] = [];
  socket.on('message', (data) => lines.push(JSON.parse(String(data))));
  await models.ApiToken.updateOne({ id: viewer.doc.id }, { $set: { revokedAt: new Date() } });
  app.gateway.authenticator.forget(viewer.doc._id); // as the API does in its own process on revocation
  const ended = closed(socket);
  socket.send(JSON.stringify({ type: 'subscribe', jobId: j.jobId, from: 0 }));
  t.match(await ended, [4401, /revoked/]);
  t.same(
    lines.filter((m) => m.type === 'line'),
    [],
  );
});

t.test('caps: streams per token, jobs per socket and subscribes per second each have a number', async (t) => {
  const { gateway, job } = await startGateway(t, { maxConnectionsPerToken: 2, maxSubscriptionsPerSocket: 2, subscribesPerSecond: 3 });
  const { ws } = await gateway();
  const headers = { authorization: `Bearer ${TOKEN}` };
  const jobs = [await job(), await job(), await job(), await job()];
  const first = (await open(`${ws}/v1/stream`, headers)) as WebSocket;
  const second = (await open(`${ws}/v1/jobs/${jobs[0]!.jobId}/stream`, headers)) as WebSocket;
  t.equal(await open(`${ws}/v1/stream`, headers), 429, 'a third stream of the same token is refused');
  second.close();
  await closed(second);
  const errors: { code?: number; message?: string; jobId?: string }[] = [];
  first.on('message', (data) => {
    const message = JSON.parse(String(data));
    if (message.type === 'error') errors.push(message);
  });
  for (const j of jobs) first.send(JSON.stringify({ type: 'subscribe', jobId: j.jobId }));
  first.send(JSON.stringify({ type: 'subscribe', jobId: 'x', from: -1 }));
  first.send('not json');
  await new Promise<void>((resolve) => {
    const check = setInterval(() => errors.length >= 4 && (clearInterval(check), resolve()), 20);
  });
  t.match(errors, [
    { code: 4429, jobId: jobs[2]!.jobId, message: /at most 2 jobs per socket/ },
    { code: 4429, jobId: jobs[3]!.jobId, message: /subscribes per second/ },
    { code: 4400, message: /from/ },
    { code: 4400, message: /JSON/ },
  ]);
  first.close();
});

t.test("a gateway's memory of a job's recent lines is bounded in bytes, however large the lines", async (t) => {
  const { gateway, job } = await startGateway(t);
  const { hub } = await gateway();
  const j = await job();
  const LINES = 6 * 64; // 6 MiB of 16 KiB lines
  // A watcher of the job, as a client's stream is (the hub keeps a job's lines while it is watched).
  let received = 0;
  let resolveAll: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  const leave = await hub.subscribe(j.jobId, (message) => {
    if (message.type === 'line' && ++received === LINES) resolveAll();
  });
  t.teardown(leave);
  // Lines as long as a line may be (longer ones are cut by the runner): 6 MiB in all, past the 4 MiB bound.
  const line = 'y'.repeat(MAX_LINE_CHARS);
  for (let i = 0; i < LINES; i++) j.sink.line('stdout', line);
  await all;
  const held = hub.recentBytes(j.jobId);
  t.ok(held > 0 && held <= RECENT_BYTES, `${held} bytes held for gap filling (at most ${RECENT_BYTES})`);
  t.ok(held >= RECENT_BYTES - 2 * (MAX_LINE_CHARS + 1024), `and it keeps close to the bound (${held} bytes), not just a few lines`);
});

t.test("another tenant's job is unknown on the gateway: 4404 on its stream, an error on the multiplexed socket, no line", async (t) => {
  const { gateway, job, models } = await startGateway(t);
  const { ws } = await gateway();
  await models.Tenant.create([
    { _id: 'acme', displayName: 'Acme', createdBy: 'test' },
    { _id: 'beta', displayName: 'Beta', createdBy: 'test' },
  ]);
  const j = await job();
  await models.StackJob.updateOne({ _id: j.jobId }, { $set: { tenantId: 'acme' } });
  j.sink.line('stdout', "acme's deployment output");
  const acme = await storeApiToken(models, { name: 'acme-wall', role: 'viewer', tenantId: 'acme', createdBy: 'test' });
  const beta = await storeApiToken(models, { name: 'beta-wall', role: 'admin', tenantId: 'beta', createdBy: 'test' });
  const messagesOf = (socket: WebSocket) => {
    const messages: { type: string; code?: number; text?: string }[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    return messages;
  };

  const foreign = (await open(`${ws}/v1/jobs/${j.jobId}/stream`, { authorization: `Bearer ${beta.token}` })) as WebSocket;
  const seenByBeta = messagesOf(foreign);
  const [code, reason] = await closed(foreign);
  t.equal(code, 4404, "beta's admin: as if there were no such job");
  t.match(reason, /not found/);
  t.same(
    seenByBeta.map((m) => m.type),
    ['error'],
  );

  const multi = (await open(`${ws}/v1/stream`, { authorization: `Bearer ${beta.token}` })) as WebSocket;
  const onSocket = messagesOf(multi);
  const answered = new Promise<void>((resolve) => multi.on('message', () => resolve()));
  multi.send(JSON.stringify({ type: 'subscribe', jobId: j.jobId, from: 0 }));
  await answered;
  t.match(onSocket, [{ type: 'error', code: 4404 }], 'a subscribe gets the same answer');
  const multiClosed = closed(multi);
  multi.close();
  await multiClosed;

  const own = (await open(`${ws}/v1/jobs/${j.jobId}/stream`, { authorization: `Bearer ${acme.token}` })) as WebSocket;
  const seenByAcme = messagesOf(own);
  const ownEnd = closed(own);
  await j.finish();
  t.equal((await ownEnd)[0], 1000, "acme's viewer streams its job to the end");
  t.ok(seenByAcme.some((m) => m.text === "acme's deployment output"));
  t.notOk(
    [...seenByBeta, ...onSocket].some((m) => m.type === 'line'),
    'beta saw no line',
  );
});

t.test('a client that leaves while its stream is being set up leaves nothing behind: no subscription, no polling', async (t) => {
  const { gateway, job, models } = await startGateway(t);
  const { hub } = await gateway();
  const j = await job();
  const left = new AbortController();
  left.abort(); // gone before the stream subscribed: the abort event fired while no one listened
  const sent: unknown[] = [];
  const stream = streamJob({ models, hub, checkEveryMs: 50 }, j.jobId, 0, (m) => sent.push(m), left.signal, { role: 'platform' });
  let bound: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    stream.then(() => 'returned'),
    new Promise<string>((resolve) => (bound = setTimeout(resolve, 10_000, 'still streaming after 10 s'))),
  ]);
  clearTimeout(bound);
  t.equal(outcome, 'returned', 'the stream ends for a client that is gone');
  t.equal(hub.subscriptions, 0, "and the job's channel is unsubscribed");
});

t.test('a subscribe Redis refused leaves no listener and no broken channel: the next watcher of the job subscribes afresh', async (t) => {
  const { redisUrl } = await startGateway(t);
  const subscriber = createRedis(redisUrl, 'subscriber', createLogger({ name: 'hub-test', level: 'silent' }));
  t.teardown(() => subscriber.disconnect());
  const hub = new SubscriptionHub(subscriber, createLogger({ name: 'hub-test', level: 'silent' }));
  subscriber.disconnect(); // Redis away for good: the SUBSCRIBE cannot be made
  await t.rejects(
    hub.subscribe('job-a', () => undefined),
    /ended/,
  );
  t.equal(hub.subscriptions, 0, 'the failed channel is not kept');
  await subscriber.connect(); // Redis back
  const heard: unknown[] = [];
  const leave = await hub.subscribe('job-a', (message) => heard.push(message));
  t.equal(hub.subscriptions, 1, 'the next watcher subscribes');
  await leave();
  t.equal(hub.subscriptions, 0);
});

t.test('an SSE client that leaves while its token is being checked holds no connection and no subscription', async (t) => {
  const { gateway, job, models } = await startGateway(t);
  const { app, hub, http } = await gateway();
  const j = await job();
  const { port } = new URL(http);
  for (let i = 0; i < 3; i++) {
    // A token of its own each time: not in the token cache, so its check waits on MongoDB.
    const viewer = await storeApiToken(models, { name: `leaver-${i}`, role: 'viewer', createdBy: 'test' });
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end(
          `GET /v1/jobs/${j.jobId}/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${viewer.token}\r\n\r\n`,
        );
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
  }
  const deadline = Date.now() + 5_000;
  while ((app.gateway.connections.size > 0 || hub.subscriptions > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(app.gateway.connections.size, 0, 'no connection is held for a client that is gone');
  t.equal(hub.subscriptions, 0, 'nor a subscription to its job');
});
