import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createApiQueues } from '@pds/api';
import { type Managed, startRunnerProcess, startStandInRunnerProcesses, testIsolation, toolPath } from '@pds/devkit';
import { type Teardowns, testMongo, testRedis } from '@pds/devkit/tap';
import { createRunner, type RunnerDeps } from '@pds/runner';
import {
  type Config,
  connectMongo,
  type Models,
  type StackJobDoc,
  type ResourceDoc,
  createLogger,
  createModels,
  createRedis,
  jobChannel,
  loadConfig,
  loadKindRegistry,
  StackQueue,
  WaitingJobs,
  redisReady,
  prepareStore,
  isFinalStatus,
  type JobStatus,
  liveJobs,
} from '@pds/shared';
import { buildGateway, SubscriptionHub } from '@pds/stream-gateway';
import WebSocket from 'ws';
import { JobWatch } from './job-watch.js';

export const TOKEN = 'test-admin-token-0123456789-abcdefghijklmnop';

/**
 * The three services in this process, on a real Redis, a real MongoDB wire server, the real
 * Pulumi CLI and a file state backend in a temporary folder. Everything is torn down with `t`.
 */
export const CREDENTIALS_KEY = Buffer.alloc(32, 3).toString('base64');

export async function startStack(
  t: Teardowns,
  overrides: Partial<Config> = {},
  options: {
    prefix?: string;
    /** Receives every log line of the three services. */
    logs?: (line: string) => void;
    /** Runner settings that are not configuration. */
    runner?: Pick<RunnerDeps, 'lockedRetryWaitsMs'>;
    /** The gateway's port (a test that tells browsers where it is before it starts); default: any free one. */
    gatewayPort?: number;
  } = {},
) {
  // A test may bring its own servers (to stop them mid-run), as overrides.
  const [redisUrl, mongoUrl, scratch] = await Promise.all([
    overrides.REDIS_URL ?? testRedis(t),
    overrides.MONGO_URL ?? testMongo(t),
    mkdtemp(join(tmpdir(), 'pds-e2e-')),
  ]);
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  // Jobs run as their slot's uid (RUNNER_ISOLATION=uid): they must be able to pass through to
  // their own folders under WORK_DIR and the state backend (never to list the scratch folder).
  await chmod(scratch, 0o711);
  const config = loadConfig(
    {},
    {
      MONGO_URL: mongoUrl,
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: TOKEN,
      CREDENTIALS_KEY,
      PULUMI_BIN: toolPath('pulumi'),
      PULUMI_BACKEND_URL: `file://${join(scratch, 'state')}`,
      WORK_DIR: join(scratch, 'work'),
      // The tests' LocalFileSet folders live in temporary folders.
      LOCAL_FILES_ROOT: tmpdir(),
      RUNNER_ISOLATION: testIsolation().isolation,
      LOG_LEVEL: 'silent',
      ...overrides,
    },
  );
  const logs = options.logs;
  const logger = logs
    ? createLogger({ name: 'e2e', level: 'debug' }, { write: (line: string) => logs(line) })
    : createLogger({ name: 'e2e', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  // Each test its own BullMQ key prefix; a test that starts runner processes uses their default.
  const prefix = options.prefix ?? `test-${randomUUID()}`;
  const connection = await connectMongo(config.MONGO_URL);
  t.teardown(() => connection.close());
  const models = createModels(connection);
  const watch = await JobWatch.open(config.REDIS_URL);
  t.teardown(() => watch.close());
  watches.set(models, watch);
  await prepareStore(models);
  const kinds = await loadKindRegistry(config.MODULES_DIR);

  const commandRedis = createRedis(config.REDIS_URL, 'command', logger);
  const workerRedis = createRedis(config.REDIS_URL, 'worker', logger);
  const publisher = createRedis(config.REDIS_URL, 'worker', logger);
  const subscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
  const cancelSubscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
  const apiSubscriber = createRedis(config.REDIS_URL, 'subscriber', logger);
  const connections = [commandRedis, workerRedis, publisher, subscriber, cancelSubscriber, apiSubscriber];
  t.teardown(() => Promise.allSettled(connections.map((r) => r.quit())));

  await Promise.all(connections.map(redisReady));
  const queues = createApiQueues(workerRedis, { prefix });
  t.teardown(() => queues.close());
  const mongoPing = () => connection.db?.admin().ping() as Promise<unknown>;
  const api = await buildApp(
    config,
    {
      models,
      kinds,
      ...queues,
      redis: commandRedis,
      subscriber: apiSubscriber,
      stacks: new StackQueue(commandRedis),
      waiting: new WaitingJobs(commandRedis),
      mongoPing,
    },
    logger,
  );
  t.teardown(() => api.close());

  const runner = createRunner({
    config,
    models,
    kinds,
    connection: workerRedis,
    publisher,
    subscriber: cancelSubscriber,
    logger,
    prefix,
    heartbeatMs: config.RUNNER_HEARTBEAT_SECONDS * 1000,
    ...options.runner,
  });
  await runner.start();
  t.teardown(() => runner.close());

  const hub = new SubscriptionHub(subscriber, logger);
  const gateway = await buildGateway(config, { models, hub, redis: commandRedis, mongoPing }, logger);
  await gateway.listen({ host: '127.0.0.1', port: options.gatewayPort ?? 0 });
  t.teardown(() => gateway.close());
  const gatewayUrl = `ws://127.0.0.1:${(gateway.server.address() as { port: number }).port}`;

  const auth = { authorization: `Bearer ${TOKEN}` };
  return { config, models, api, runner, ...queues, gateway, gatewayUrl, auth, scratch };
}

export interface StreamedMessage {
  type: string;
  seq?: number;
  stream?: string;
  text?: string;
  event?: Record<string, unknown>;
  status?: string;
  [key: string]: unknown;
}

/** Reads a job's stream over a real WebSocket until the server closes it. */
export function readStream(url: string, token = TOKEN): Promise<{ messages: StreamedMessage[]; code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const messages: StreamedMessage[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as StreamedMessage));
    socket.on('close', (code, reason) => resolve({ messages, code, reason: String(reason) }));
    socket.on('error', reject);
  });
}

/** A LocalFileSet manifest; a file's `delayMs` makes its creation take that long (a long-running up). */
export function fileSetManifest(name: string, directory: string, files: { path: string; content: string; delayMs?: number }[]): string {
  const list = files
    .map(
      (f) =>
        `    - path: ${JSON.stringify(f.path)}\n      content: ${JSON.stringify(f.content)}${f.delayMs ? `\n      delayMs: ${f.delayMs}` : ''}`,
    )
    .join('\n');
  const filesField = files.length > 0 ? `files:\n${list}` : 'files: []';
  return `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: ${directory}\n  ${filesField}\n`;
}

type Stack = Awaited<ReturnType<typeof startStack>>;

/**
 * Reads a document by id every `everyMs` until `ready` holds (read errors, as while the store is
 * away, count as not yet); throws after `timeoutMs`, showing what it last read.
 */
/**
 * Reads a document until `ready` holds: again as soon as `wake` calls (an announcement about it;
 * subscribed before the first read, so none is missed), else every `everyMs`.
 */
async function waitForDoc<T>(
  read: () => Promise<T | null>,
  ready: (doc: T) => boolean,
  options: { timeoutMs: number; everyMs: number; what: (doc: T | null) => string; wake?: (listener: () => void) => () => void },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let woken: boolean | undefined;
  let resume: (() => void) | undefined;
  const stop = options.wake?.(() => {
    woken = true;
    resume?.();
  });
  try {
    for (;;) {
      woken = false;
      const doc = await read().catch(() => null);
      if (doc && ready(doc)) return doc;
      if (Date.now() > deadline) throw new Error(`${options.what(doc)} never got there`);
      if (woken) continue; // announced while it was being read
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(options.everyMs, Math.max(0, deadline - Date.now()) + 1));
        resume = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      resume = undefined;
    }
  } finally {
    stop?.();
  }
}

/**
 * Resolves once `condition` holds: a state of this process or of a store, asked every 10 ms (an
 * error asking counts as not yet). Throws naming `what` after `timeoutMs`. What a test waits for,
 * instead of sleeping for a time it hopes is long enough.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(condition)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Once a line or event of the job (its text, or the event's JSON) matches `pattern`: the run has got
 * that far. Heard live on the job's channel (stored lines can lag: a part-chunk is written late), and
 * looked for among the stored ones too, for a line published before this listened.
 */
export async function untilLine(stack: Stack, jobId: string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const matches = (line: { text?: string; event?: Record<string, unknown> }) => pattern.test(line.text ?? JSON.stringify(line.event ?? {}));
  const listener = createRedis(stack.config.REDIS_URL, 'subscriber', createLogger({ name: 'until-line', level: 'silent' }));
  let heard = false;
  listener.on('message', (_channel: string, text: string) => {
    const message = JSON.parse(text) as { type: string; text?: string; event?: Record<string, unknown> };
    if ((message.type === 'line' || message.type === 'event') && matches(message)) heard = true;
  });
  try {
    await redisReady(listener);
    await listener.subscribe(jobChannel(jobId));
    await until(
      async () => heard || (await storedLines(stack, jobId)).some(matches),
      `a line of job ${jobId} matching ${pattern}`,
      timeoutMs,
      100,
    );
  } finally {
    listener.disconnect();
  }
}

/** Each stack's JobWatch, by its models (what tests hand waitForJob). */
const watches = new WeakMap<object, JobWatch>();

/**
 * A job document once `ready` holds; throws after `timeoutMs`. With a stack's models it is read
 * again on each announcement about the job (status, end, amendment), and once a second besides for
 * writes nothing announces; other models are polled every 200 ms.
 */
export function waitForJob(
  models: Pick<Models, 'StackJob'>,
  id: string,
  ready: (doc: StackJobDoc) => boolean,
  timeoutMs = 30_000,
): Promise<StackJobDoc> {
  const read = () => models.StackJob.findById(id).lean<StackJobDoc>();
  const watch = watches.get(models);
  return waitForDoc(read, ready, {
    timeoutMs,
    everyMs: watch ? 1_000 : 200,
    what: (doc) => `job ${id} (${JSON.stringify(doc)})`,
    ...(watch ? { wake: (listener: () => void) => watch.on(id, listener) } : {}),
  });
}

/**
 * A resource once `ready` holds: its `stack` is written after its job's end (a job seen ended may
 * still show the stack as it was); throws after `timeoutMs`.
 */
export function waitForResource(
  models: Pick<Models, 'Resource'>,
  id: string,
  ready: (doc: ResourceDoc) => boolean,
  timeoutMs = 30_000,
): Promise<ResourceDoc> {
  const read = () => models.Resource.findById(id).lean<ResourceDoc>();
  return waitForDoc(read, ready, { timeoutMs, everyMs: 50, what: (doc) => `resource ${id} (stack ${JSON.stringify(doc?.stack)})` });
}

/**
 * The audit entries of an action on a target, once there are `count` of them: the API writes an
 * entry after its answer is sent (onResponse), so a test reads them as they arrive.
 */
export async function waitForAudit(
  models: Pick<Models, 'AuditEntry'>,
  action: string,
  targetId: string,
  count: number,
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entries = await models.AuditEntry.find({ action, targetId }).lean();
    if (entries.length >= count || Date.now() > deadline) return entries;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A job's persisted lines and events through the API (`GET /v1/jobs/:id/lines`), in seq order. */
export async function storedLines(stack: Stack, jobId: string) {
  const res = await stack.api.inject({ method: 'GET', url: `/v1/jobs/${jobId}/lines?from=0&limit=10000`, headers: stack.auth });
  return (res.json() as { items: { seq: number; type?: string; text?: string; event?: Record<string, unknown> }[] }).items;
}

/**
 * A job document written straight into the store on a LocalFileSet resource (what a runner, the API
 * or a lost runner would have left), for tests of what the service does with it: `fields` on top.
 */
export async function insertJob(
  stack: Pick<Stack, 'models'>,
  resource: { id: string; stackFqdn: string },
  fields: Partial<StackJobDoc> & Pick<StackJobDoc, 'operation' | 'status'>,
): Promise<StackJobDoc> {
  const doc = await stack.models.StackJob.create({
    _id: randomUUID(),
    resourceId: resource.id,
    resourceVersion: 1,
    kind: 'LocalFileSet',
    stackFqdn: resource.stackFqdn,
    ...fields,
  });
  const job = doc.toObject() as StackJobDoc;
  // As queueing would have left it: a job not ended has its live entry (the active-job checks read those).
  if (!isFinalStatus(job.status as JobStatus)) await liveJobs(stack.models).record(job);
  return job;
}

/** Replaces a resource's manifest through the API; returns it as the API shows it (`version` + 1). */
export async function replaceResource(stack: Stack, id: string, manifest: string) {
  const replaced = await stack.api.inject({
    method: 'PUT',
    url: `/v1/resources/${id}`,
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: manifest,
  });
  if (replaced.statusCode !== 200) throw new Error(`resource not replaced: ${replaced.body}`);
  return replaced.json() as { id: string; version: number };
}

/** Creates a resource from a manifest through the API; returns it as the API shows it. */
export async function createResource(stack: Stack, manifest: string, tenant?: string) {
  const created = await stack.api.inject({
    method: 'POST',
    url: `/v1/resources${tenant ? `?tenant=${tenant}` : ''}`,
    headers: { ...stack.auth, 'content-type': 'application/yaml' },
    payload: manifest,
  });
  if (created.statusCode !== 201) throw new Error(`resource not created: ${created.body}`);
  return created.json() as { id: string; stackFqdn: string };
}

/** Queues an operation on a resource through the API; returns the job as the API shows it. */
export async function queueJob(stack: Stack, resourceId: string, body: object = { operation: 'up' }) {
  return (await stack.api.inject({ method: 'POST', url: `/v1/resources/${resourceId}/jobs`, headers: stack.auth, payload: body })).json();
}

/** Starts a real runner process (as its image does: `node main.js` with the environment). */
export { startRunnerProcess };

/** Starts `count` stand-in runner processes on the stack's stores (devkit's startStandInRunners), stopped with `t`. */
export async function startStandInRunners(
  t: Teardowns,
  stack: Stack,
  scratch: string,
  options: { count: number; slots: number; standInMs: number; log?: string },
): Promise<{ runners: Managed[]; log: string }> {
  const started = await startStandInRunnerProcesses({
    ...options,
    scratch,
    mongoUrl: stack.config.MONGO_URL,
    redisUrl: stack.config.REDIS_URL,
    filesRoot: stack.config.LOCAL_FILES_ROOT as string,
  });
  t.teardown(() => Promise.all(started.runners.map((r) => r.stop())));
  return started;
}
