/**
 * API figures under autocannon, each beside a bare Fastify route measured in the same run (the
 * servers run in a child process; the load comes from this one):
 * - `GET /v1/jobs/:id` (a finished job; bearer token) vs a bare GET returning a job-sized object;
 * - `POST /v1/resources/:id/jobs` (queues a preview: MongoDB insert + Redis line + BullMQ add) vs a
 *   bare POST answering 202.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { recentOutput, startLocalFerretDb, startLocalRedis, startProcess } from '@pds/devkit';
import autocannon from 'autocannon';
import { benchStep, fmt, row, sized } from './stats.js';

const TOKEN = 'bench-token-0123456789abcdef-abcdefghijklmnop';
const SECONDS = Number(process.env.BENCH_SECONDS ?? sized(8, 1));

async function load(url: string, options: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}) {
  benchStep(`${options.method ?? 'GET'} ${url}`);
  const result = await autocannon({
    url,
    connections: 10,
    duration: SECONDS,
    method: options.method ?? 'GET',
    body: options.body,
    headers: options.headers,
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) console.log(`  (${url}: ${bad} non-2xx / errors of ${result.requests.total})`);
  return { rps: result.requests.average, p99: result.latency.p99, p50: result.latency.p50 };
}

export async function apiBench(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'pds-api-bench-'));
  const redis = await startLocalRedis();
  const ferret = await startLocalFerretDb({ dataDir: join(scratch, 'ferret') });
  // Started as the devkit starts its servers: killed with them should the bench give up.
  const server = startProcess(process.execPath, [fileURLToPath(new URL('./api-server.js', import.meta.url))], {
    env: { ...process.env, MONGO_URL: ferret.url, REDIS_URL: redis.url, ADMIN_TOKEN: TOKEN, LOCAL_FILES_ROOT: '/tmp' },
  });
  try {
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server.child.stdout! }).once('line', resolve);
      server.child.once('exit', (code) => reject(new Error(`bench server exited with ${code}: ${recentOutput(server)}`)));
    });
    const ports = JSON.parse(first) as { api: number; bare: number; endedJobId: string };
    const api = `http://127.0.0.1:${ports.api}`;
    const bare = `http://127.0.0.1:${ports.bare}`;
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const resource = await (
      await fetch(`${api}/v1/resources`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/yaml' },
        body: 'apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: bench\nspec:\n  directory: /tmp/bench\n  files: []\n',
      })
    ).json();
    const job = await (
      await fetch(`${api}/v1/resources/${resource.id}/jobs`, { method: 'POST', headers: auth, body: '{"operation":"preview"}' })
    ).json();

    console.log(`\nAPI (autocannon, 10 connections, ${SECONDS} s each; ours vs a bare Fastify route, same run)`);
    const getBare = await load(`${bare}/bare/jobs/${job.id}`);
    const getEnded = await load(`${api}/v1/jobs/${ports.endedJobId}`, { headers: auth });
    row('GET /v1/jobs/:id (ended) requests/s', getEnded.rps, getBare.rps, 'req/s', '>= 15 % of bare (ratio >= 0.15)');
    row('GET /v1/jobs/:id (ended) p99', getEnded.p99, getBare.p99, 'ms', 'report');
    // A queued job is read from MongoDB every time, plus its place in line from Redis.
    const getOurs = await load(`${api}/v1/jobs/${job.id}`, { headers: auth });
    row('GET /v1/jobs/:id (queued) requests/s', getOurs.rps, getBare.rps, 'req/s', '>= 15 % of bare (ratio >= 0.15)');
    row('GET /v1/jobs/:id (queued) p99', getOurs.p99, getBare.p99, 'ms', 'report');
    const body = '{"operation":"preview"}';
    const postOurs = await load(`${api}/v1/resources/${resource.id}/jobs`, { method: 'POST', body, headers: auth });
    const postBare = await load(`${bare}/bare/jobs`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    row('POST /v1/resources/:id/jobs requests/s', postOurs.rps, postBare.rps, 'req/s', 'report');
    row('POST /v1/resources/:id/jobs p99', postOurs.p99, postBare.p99, 'ms', 'report');
    console.log(
      `  p50: GET ended ${fmt(getEnded.p50)}, queued ${fmt(getOurs.p50)} vs bare ${fmt(getBare.p50)} ms; POST ${fmt(postOurs.p50)} vs ${fmt(postBare.p50)} ms`,
    );
  } finally {
    server.child.kill('SIGKILL');
    await Promise.allSettled([ferret.stop(), redis.stop()]);
    await rm(scratch, { recursive: true, force: true });
  }
}
