/**
 * "The rest of the world" for the gateway benchmark, in its own process so the server under test
 * does not share its event loop with it: the WebSocket clients and the producer (a runner's line
 * sink, or a bare publisher for the raw baseline). Commands over IPC:
 * - { cmd: 'connect', url, headers, count } → { ready }; when every socket has seen `end` → { done, p50, p99, delivered, seconds }
 * - { cmd: 'produce', kind: 'ours' | 'raw', jobId, total, rate, redisUrl, mongoUrl } → { produced }
 * - { cmd: 'close' } → { closed }
 * Lines carry their send time as text `t=<epoch ms>`.
 */
import { performance } from 'node:perf_hooks';
import { LineSink } from '@pds/runner';
import { connectMongo, createLogger, createModels, createRedis, jobChannel, lineStore, type Models, redisReady } from '@pds/shared';
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import { percentile, sleep } from './stats.js';

const now = () => performance.timeOrigin + performance.now();
const logger = createLogger({ name: 'bench-clients', level: 'silent' });
let sockets: WebSocket[] = [];
let world: { publisher: Redis; models: Models } | undefined;

async function connectWorld(redisUrl: string, mongoUrl: string) {
  if (world) return world;
  const publisher = createRedis(redisUrl, 'worker', logger);
  await redisReady(publisher);
  world = { publisher, models: createModels(await connectMongo(mongoUrl)) };
  return world;
}

interface ProduceCommand {
  kind: 'ours' | 'raw';
  jobId: string;
  total: number;
  rate: number;
  redisUrl: string;
  mongoUrl: string;
}

async function produce(command: ProduceCommand): Promise<void> {
  const { publisher, models } = await connectWorld(command.redisUrl, command.mongoUrl);
  const { jobId } = command;
  const sink = command.kind === 'ours' ? new LineSink({ jobId, publisher, store: lineStore(models).writer(jobId), logger }) : undefined;
  const start = performance.now();
  for (let seq = 1; seq <= command.total; seq++) {
    if (command.rate > 0) {
      const wait = start + (seq * 1000) / command.rate - performance.now();
      if (wait > 1) await sleep(wait);
    } else if (seq % 200 === 0) await new Promise((r) => setImmediate(r));
    if (sink) sink.line('stdout', `t=${now()}`);
    else
      void publisher.publish(
        jobChannel(jobId),
        JSON.stringify({ type: 'line', jobId, seq, stream: 'stdout', text: `t=${now()}`, ts: new Date().toISOString() }),
      );
  }
  if (!sink) {
    await publisher.publish(jobChannel(jobId), JSON.stringify({ type: 'end', jobId }));
    return;
  }
  const lastSeq = await sink.close();
  await models.StackJob.updateOne({ _id: jobId }, { $set: { status: 'succeeded', lastSeq, finishedAt: new Date() } });
  sink.publish({ type: 'end', jobId, status: 'succeeded', exitCode: 0, summary: {}, lastSeq, ts: new Date().toISOString() });
}

function connect(url: string, count: number, headers: Record<string, string> = {}): Promise<void> {
  const latencies: number[] = [];
  let delivered = 0;
  let first = 0;
  let last = 0;
  let ended = 0;
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(url, { headers });
          socket.on('message', (data) => {
            const text = String(data);
            if (text.includes('"type":"end"')) {
              if (++ended === count) {
                process.send?.({
                  done: true,
                  p50: percentile(latencies, 50),
                  p99: percentile(latencies, 99),
                  delivered,
                  seconds: (last - first) / 1000,
                });
              }
              return;
            }
            const match = /t=(\d+(?:\.\d+)?)/.exec(text);
            if (!match) return;
            const at = now();
            first ||= at;
            last = at;
            delivered++;
            if (count === 1 || delivered % 7 === 0) latencies.push(at - Number(match[1]));
          });
          socket.once('open', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  ).then((opened) => {
    sockets = opened;
  });
}

process.on('message', (command: Command) => {
  // A refused connection or a failed producer is said to the bench, which gives up at once.
  handle(command).catch((err: Error) => process.send?.({ failed: `${command.cmd}: ${err.message}` }));
});

type Command = { cmd: string; url?: string; count?: number; headers?: Record<string, string> } & ProduceCommand;

async function handle(command: Command): Promise<void> {
  if (command.cmd === 'close') {
    for (const socket of sockets) socket.terminate();
    sockets = [];
    process.send?.({ closed: true });
  } else if (command.cmd === 'produce') {
    await produce(command);
    process.send?.({ produced: true });
  } else if (command.cmd === 'connect') {
    await connect(command.url as string, command.count ?? 1, command.headers);
    process.send?.({ ready: true });
  }
}
