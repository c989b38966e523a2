import { randomUUID } from 'node:crypto';
import { testMongo, testRedis } from '@pds/devkit/tap';
import { LineSink } from '@pds/runner';
import { connectMongo, createLogger, createModels, createRedis, lineStore, prepareStore } from '@pds/shared';
import { buildGateway, SubscriptionHub } from '@pds/stream-gateway';
import t from 'tap';
import WebSocket from 'ws';

const TOKEN = 'handoff-test-token-0123456789-abcdefghijklmnop';
const LINES = Number(process.env.HANDOFF_LINES ?? 50_000);
const CLIENTS = 20;

interface Received {
  from: number;
  seqs: number[];
  end?: { status: string; lastSeq: number };
  code?: number;
}

t.test(
  `${CLIENTS} clients joining at random moments from random seqs each get exactly their range while ${LINES} lines are produced`,
  async (t) => {
    const [redisUrl, mongoUrl] = await Promise.all([testRedis(t), testMongo(t)]);
    const logger = createLogger({ name: 'handoff', level: 'silent' });
    const connection = await connectMongo(mongoUrl);
    t.teardown(() => connection.close());
    const models = createModels(connection);
    await prepareStore(models);
    const publisher = createRedis(redisUrl, 'worker', logger);
    const subscriber = createRedis(redisUrl, 'subscriber', logger);
    const command = createRedis(redisUrl, 'command', logger);
    t.teardown(() => Promise.allSettled([publisher.quit(), subscriber.quit(), command.quit()]));
    const hub = new SubscriptionHub(subscriber, logger);
    const gateway = await buildGateway(
      { ADMIN_TOKEN: TOKEN } as never,
      { models, hub, redis: command, mongoPing: async () => undefined },
      logger,
    );
    await gateway.listen({ host: '127.0.0.1', port: 0 });
    t.teardown(() => gateway.close());
    const port = (gateway.server.address() as { port: number }).port;

    const job = await models.StackJob.create({
      _id: randomUUID(),
      resourceId: 'r',
      resourceVersion: 1,
      kind: 'LocalFileSet',
      stackFqdn: 'organization/p/s',
      operation: 'up',
      status: 'running',
    });
    const jobId = job._id;
    const sink = new LineSink({ jobId, publisher, store: lineStore(models).writer(jobId), logger });

    const clients: Promise<Received>[] = [];
    const join = (from: number) =>
      new Promise<Received>((resolve, reject) => {
        const received: Received = { from, seqs: [] };
        const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/jobs/${jobId}/stream?from=${from}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        socket.on('message', (data) => {
          const message = JSON.parse(String(data));
          if (message.type === 'end') received.end = message;
          else if (message.seq !== undefined) received.seqs.push(message.seq);
        });
        socket.on('close', (code) => resolve({ ...received, code }));
        socket.on('error', reject);
      });
    const joinAt = new Set(Array.from({ length: CLIENTS }, () => Math.floor(Math.random() * LINES)));
    for (let i = 1; i <= LINES; i++) {
      sink.line(i % 7 === 0 ? 'stderr' : 'stdout', `line ${i} ${'x'.repeat(i % 80)}`);
      if (joinAt.has(i)) clients.push(join(Math.floor(Math.random() * i)));
      // Let the event loop breathe as a real runner does between chunks of Pulumi output.
      if (i % 250 === 0) await new Promise((r) => setImmediate(r));
    }
    while (clients.length < CLIENTS) clients.push(join(Math.floor(Math.random() * LINES)));
    const lastSeq = await sink.close();
    await models.StackJob.updateOne({ _id: jobId }, { $set: { status: 'succeeded', exitCode: 0, lastSeq, finishedAt: new Date() } });
    sink.publish({ type: 'end', jobId, status: 'succeeded', exitCode: 0, summary: {}, lastSeq, ts: new Date().toISOString() });

    const results = await Promise.all(clients);
    t.equal(lastSeq, LINES);
    for (const r of results) {
      const expected = LINES - r.from;
      const contiguous = r.seqs.length === expected && r.seqs.every((seq, i) => seq === r.from + 1 + i);
      t.ok(contiguous, `client from ${r.from}: ${r.seqs.length} of ${expected} lines, contiguous and without duplicates`);
      t.same(r.end && { status: r.end.status, lastSeq: r.end.lastSeq }, { status: 'succeeded', lastSeq: LINES }, 'then the end message');
      t.equal(r.code, 1000);
    }
    t.equal(hub.subscriptions, 0, 'the job channel is unsubscribed once every client left');
  },
);
