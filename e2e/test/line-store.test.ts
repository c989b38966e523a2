import { randomUUID } from 'node:crypto';
import { testMongo, testRedis } from '@pds/devkit/tap';
import { LineSink } from '@pds/runner';
import {
  connectMongo,
  createLogger,
  createModels,
  createRedis,
  LINES_PER_CHUNK,
  lineStore,
  type StoredLine,
  prepareStore,
} from '@pds/shared';
import t from 'tap';

const line = (seq: number): StoredLine => ({ seq, stream: 'stdout', text: `line ${seq}`, ts: new Date().toISOString() });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

t.test('job lines on a real MongoDB wire server', async (t) => {
  const [mongoUrl, redisUrl] = await Promise.all([testMongo(t), testRedis(t)]);
  const connection = await connectMongo(mongoUrl);
  t.teardown(() => connection.close());
  const models = createModels(connection);
  await prepareStore(models);
  const store = lineStore(models);

  t.test('appends of any size, and an append repeated (its answer lost), store each line once, in order', async (t) => {
    const jobId = randomUUID();
    const writer = store.writer(jobId);
    await writer.append(range(1, 100).map(line)); // part of chunk 0: inserted
    await writer.append(range(101, 700).map(line)); // chunk 0 rewritten, 1 inserted, 2 begun
    const again = range(701, 800).map(line);
    await writer.append(again);
    // The same append again, as after a lost answer: the repeat must not fail or duplicate.
    const repeat = store.writer(jobId);
    await repeat.append(range(513, 800).map(line));
    await writer.append(range(801, 1_000).map(line));
    const read = await store.read(jobId, 0, 10_000);
    t.same(
      read.map((l) => l.seq),
      range(1, 1_000),
    );
    t.equal(await models.JobLineChunk.countDocuments({ jobId }), Math.ceil(1_000 / LINES_PER_CHUNK));
  });

  t.test('a sink fed in bursts stores 1..n without a hole, whatever part-chunks it held back on the way', async (t) => {
    const publisher = createRedis(redisUrl, 'worker', createLogger({ name: 'lines', level: 'silent' }));
    // quit() can reject with 'Connection is closed.' when the server closes first; the connection is gone either way.
    t.teardown(() => publisher.quit().catch(() => publisher.disconnect()));
    const jobId = randomUUID();
    const sink = new LineSink({
      jobId,
      publisher,
      store: store.writer(jobId),
      logger: createLogger({ name: 'lines', level: 'silent' }),
      batchMs: 5,
    });
    let produced = 0;
    for (const burst of [1, 300, 7, 2_600, 255, 1, 5_000, 90]) {
      for (let i = 0; i < burst; i++) sink.line('stdout', `line ${++produced}`);
      await new Promise((r) => setTimeout(r, burst % 2 === 0 ? 30 : 0));
    }
    t.equal(await sink.close(), produced);
    const read = await store.read(jobId, 0, 100_000);
    t.same(
      read.map((l) => l.seq),
      range(1, produced),
    );
    t.equal(read.at(-1)?.text, `line ${produced}`);
  });

  t.test('a flush with nothing to write does not keep later lines from being written', async (t) => {
    const publisher = createRedis(redisUrl, 'worker', createLogger({ name: 'lines', level: 'silent' }));
    // quit() can reject with 'Connection is closed.' when the server closes first; the connection is gone either way.
    t.teardown(() => publisher.quit().catch(() => publisher.disconnect()));
    const jobId = randomUUID();
    const sink = new LineSink({ jobId, publisher, store: store.writer(jobId), logger: createLogger({ name: 'lines', level: 'silent' }) });
    await sink.flush();
    sink.line('stdout', 'first');
    sink.line('stderr', 'second');
    t.equal(await sink.close(), 2);
    t.same(
      (await store.read(jobId, 0, 10)).map((l) => l.text),
      ['first', 'second'],
    );
  });
});
