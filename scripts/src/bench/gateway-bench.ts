/**
 * Stream gateway figures, each beside a raw Redis pub/sub → ws relay measured in the same run:
 * publish→client latency with 1 and 100 clients at 1,000 lines/s, delivered lines/s with 100
 * clients, memory per idle connection, Redis subscriptions held for 100 clients on one job.
 * Everything runs in this process on loopback (clients included), for raw and ours alike.
 */
import { randomUUID } from 'node:crypto';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalFerretDb, startLocalRedis } from '@pds/devkit';

import { connectMongo, createLogger, createModels, createRedis, jobChannel, redisReady, prepareStore } from '@pds/shared';
import { buildGateway, SubscriptionHub } from '@pds/stream-gateway';
import { type WebSocket, WebSocketServer } from 'ws';
import { benchStep, row, sized, sleep } from './stats.js';

const TOKEN = 'bench-token-0123456789abcdef-abcdefghijklmnop';
const logger = createLogger({ name: 'bench', level: 'silent' });

interface Target {
  name: string;
  url(jobId: string): string;
  /** How a client of today authenticates: a bearer token in the upgrade request's header. */
  headers?: Record<string, string>;
  kind: 'ours' | 'raw';
  /** Makes whatever the job needs before clients join (the job document, for ours). */
  prepare(jobId: string): Promise<void>;
  close(): Promise<void>;
}

/** The baseline: one Redis subscription per client socket's channel, relayed as is. */
async function rawRelay(redisUrl: string): Promise<Target> {
  const subscriber = createRedis(redisUrl, 'subscriber', logger);
  const publisher = createRedis(redisUrl, 'worker', logger);
  await Promise.all([redisReady(subscriber), redisReady(publisher)]);
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const clients = new Map<string, Set<WebSocket>>();
  subscriber.on('message', (channel: string, raw: string) => {
    for (const socket of clients.get(channel) ?? []) socket.send(raw);
  });
  wss.on('connection', (socket, request) => {
    const channel = jobChannel(new URL(request.url ?? '/', 'http://x').pathname.split('/')[3] as string);
    if (!clients.has(channel)) {
      clients.set(channel, new Set());
      void subscriber.subscribe(channel);
    }
    clients.get(channel)?.add(socket);
    socket.on('close', () => clients.get(channel)?.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    name: 'raw',
    url: (jobId) => `ws://127.0.0.1:${port}/v1/jobs/${jobId}/stream`,
    kind: 'raw',
    prepare: async () => undefined,
    async close() {
      for (const socket of wss.clients) socket.terminate();
      wss.close();
      server.close();
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

async function ours(redisUrl: string, mongoUrl: string): Promise<Target & { hub: SubscriptionHub }> {
  const connection = await connectMongo(mongoUrl);
  const models = createModels(connection);
  await prepareStore(models);
  const subscriber = createRedis(redisUrl, 'subscriber', logger);
  const publisher = createRedis(redisUrl, 'worker', logger);
  const command = createRedis(redisUrl, 'command', logger);
  await Promise.all([redisReady(subscriber), redisReady(publisher), redisReady(command)]);
  const hub = new SubscriptionHub(subscriber, logger);
  // One token opens every client of the bench: the per-token cap (20 streams) is raised above them.
  const app = await buildGateway({ ADMIN_TOKEN: TOKEN }, { models, hub, redis: command, mongoPing: async () => undefined }, logger, {
    maxConnectionsPerToken: 100_000,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    name: 'gateway',
    hub,
    url: (jobId) => `ws://127.0.0.1:${port}/v1/jobs/${jobId}/stream?from=0`,
    headers: { authorization: `Bearer ${TOKEN}` },
    kind: 'ours',
    async prepare(jobId) {
      await models.StackJob.create({
        _id: jobId,
        resourceId: 'r',
        resourceVersion: 1,
        kind: 'k',
        stackFqdn: `o/p/${jobId}`,
        operation: 'up',
        status: 'running',
      });
    },
    async close() {
      await app.close();
      subscriber.disconnect();
      publisher.disconnect();
      command.disconnect();
      await connection.close();
    },
  };
}

/** The client process (see clients.ts). */
function clientProcess() {
  const child = fork(fileURLToPath(new URL('./clients.js', import.meta.url)), { stdio: 'inherit' });
  const wait = <T>(answer: string) =>
    new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null) => done(() => reject(new Error(`the client process exited (${code}) before ${answer}`)));
      const onMessage = (message: Record<string, unknown>) => {
        if (message.failed) done(() => reject(new Error(`the clients failed: ${String(message.failed)}`)));
        else if (message[answer]) done(() => resolve(message as T));
      };
      const done = (settle: () => void) => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        settle();
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const ask = <T>(command: object, answer: string) => {
    const answered = wait<T>(answer);
    child.send(command);
    return answered;
  };
  return { child, ask, wait };
}

interface Urls {
  redisUrl: string;
  mongoUrl: string;
}

interface Run {
  p50: number;
  p99: number;
  delivered: number;
  seconds: number;
}

/** `clients` clients in the client process; the producer emits `total` lines at `rate` per second (0: as fast as it can). */
async function run(
  target: Target,
  clients: ReturnType<typeof clientProcess>,
  urls: Urls,
  count: number,
  total: number,
  rate: number,
): Promise<Run> {
  const jobId = randomUUID();
  await target.prepare(jobId);
  await clients.ask({ cmd: 'connect', url: target.url(jobId), headers: target.headers, count }, 'ready');
  await sleep(200);
  const done = clients.wait<Run>('done');
  done.catch(() => undefined); // its failure is heard where it is awaited
  await clients.ask({ cmd: 'produce', kind: target.kind, jobId, total, rate, ...urls }, 'produced');
  const result = await Promise.race([done, sleep(60_000).then(() => ({ p50: NaN, p99: NaN, delivered: 0, seconds: 1 }))]);
  await clients.ask({ cmd: 'close' }, 'closed');
  return result;
}

/** Server heap + external bytes per idle connection (the clients live in the client process). */
async function memoryPerConnection(target: Target, clients: ReturnType<typeof clientProcess>, connections: number): Promise<number> {
  const jobId = randomUUID();
  await target.prepare(jobId);
  global.gc?.();
  await sleep(200);
  const before = process.memoryUsage();
  await clients.ask({ cmd: 'connect', url: target.url(jobId), headers: target.headers, count: connections }, 'ready');
  await sleep(500);
  global.gc?.();
  const after = process.memoryUsage();
  await clients.ask({ cmd: 'close' }, 'closed');
  await sleep(300);
  return (after.heapUsed + after.external - before.heapUsed - before.external) / connections;
}

export async function gatewayBench(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pds-bench-'));
  const redis = await startLocalRedis();
  const ferret = await startLocalFerretDb({ dataDir });
  const raw = await rawRelay(redis.url);
  const gateway = await ours(redis.url, ferret.url);
  const clients = clientProcess();
  try {
    console.log('\n== stream gateway (ours vs raw Redis pub/sub + ws relay, same run; clients in another process) ==');
    console.log(`${'figure'.padEnd(46)} ${'ours'.padStart(10)} ${'raw'.padStart(10)}`);
    const many = sized(100, 5);
    for (const count of [1, many]) {
      const urls = { redisUrl: redis.url, mongoUrl: ferret.url };
      benchStep(`latency, ${count} client(s)`);
      const g = await run(gateway, clients, urls, count, sized(5000, 50), 1000);
      const r = await run(raw, clients, urls, count, sized(5000, 50), 1000);
      row(`latency p50, ${count} client(s), 1000 lines/s`, g.p50, r.p50, 'ms', '');
      row(`latency p99, ${count} client(s), 1000 lines/s`, g.p99, r.p99, 'ms', 'p99 <= 1.5x raw');
    }
    const urls = { redisUrl: redis.url, mongoUrl: ferret.url };
    benchStep(`delivered lines/s, ${many} clients`);
    const gt = await run(gateway, clients, urls, many, sized(20_000, 200), 0);
    const rt = await run(raw, clients, urls, many, sized(20_000, 200), 0);
    row(`delivered lines/s, ${many} clients`, gt.delivered / gt.seconds, rt.delivered / rt.seconds, 'lines/s', '>= 70% of raw');
    benchStep('memory per idle connection');
    const idle = sized(1000, 20);
    const gm = await memoryPerConnection(gateway, clients, idle);
    const rm_ = await memoryPerConnection(raw, clients, idle);
    row('server memory per idle connection', gm / 1024, rm_ / 1024, 'KiB', 'report');
    // Wait for the streams of the memory run to wind down, so only this job is subscribed.
    for (let i = 0; i < 50 && gateway.hub.subscriptions > 0; i++) await sleep(100);
    benchStep(`redis subscriptions, ${many} clients on one job`);
    const jobId = randomUUID();
    await gateway.prepare(jobId);
    await clients.ask({ cmd: 'connect', url: gateway.url(jobId), headers: gateway.headers, count: many }, 'ready');
    await sleep(300);
    console.log(
      `${`redis subscriptions, ${many} clients on one job`.padEnd(46)} ${String(gateway.hub.subscriptions).padStart(10)}   goal: 1`,
    );
    await clients.ask({ cmd: 'close' }, 'closed');
  } finally {
    clients.child.kill();
    await gateway.close();
    await raw.close();
    await ferret.stop();
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
