import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recentOutput } from '@pds/devkit';
import type { StackJobDoc } from '@pds/shared';
import t from 'tap';
import { fileSetManifest, startStack, startStandInRunners, until } from './harness.js';

/** Tenant a floods, b and c come after; weights 1:1:2 (the bench runs the issue's 500 and 50s). */
const FLOOD = Number(process.env.FAIR_FLOOD ?? 100);
const EACH = Number(process.env.FAIR_EACH ?? 40);
const WEIGHTS: Record<string, number> = { fa: 1, fb: 1, fc: 2 };
const STACKS: Record<string, number> = { fa: 24, fb: 10, fc: 10 };
const RUNNERS = 3;
const SLOTS = 4;

interface Run {
  tenant: string;
  start: number;
  end: number;
}

/** The stand-in's log as runs (per stack, start and end alternate), with the tenant its stack's name begins with. */
function runsOf(log: string): Run[] {
  const open = new Map<string, number>();
  const runs: Run[] = [];
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [what, fqdn = '', ns = '0'] = line.split(' ');
    const ms = Number(BigInt(ns) / 1_000_000n);
    if (what === 'start') open.set(fqdn, ms);
    else runs.push({ tenant: (fqdn.split('/').at(-1) ?? '').slice(0, 2), start: open.get(fqdn) ?? ms, end: ms });
  }
  return runs;
}

/** Each tenant's slot-time within [from, to]. */
function slotTime(runs: Run[], from: number, to: number): Record<string, number> {
  const time: Record<string, number> = {};
  for (const run of runs) time[run.tenant] = (time[run.tenant] ?? 0) + Math.max(0, Math.min(run.end, to) - Math.max(run.start, from));
  return time;
}

t.test(
  `fair share: ${FLOOD} jobs of one tenant, then ${EACH} each of two more (weights 1:1:2), on ${RUNNERS} runner processes × ${SLOTS} slots`,
  async (t) => {
    const stack = await startStack(t, { RUNNER_CONCURRENCY: 1 }, { prefix: 'bull' });
    // Only the runner processes take jobs (and lead the dispatch).
    await stack.runner.close();
    const scratch = await mkdtemp(join(tmpdir(), 'pds-fair-'));
    t.teardown(() => rm(scratch, { recursive: true, force: true }));
    const call = async (method: 'POST' | 'PUT', url: string, payload: object | string) => {
      const res = await stack.api.inject({
        method,
        url,
        headers: { ...stack.auth, ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
        payload,
      });
      if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const resources: Record<string, string[]> = {};
    for (const [tenant, weight] of Object.entries(WEIGHTS)) {
      await call('POST', '/v1/tenants', { name: tenant });
      await call('PUT', `/v1/tenants/${tenant}/policy`, { weight });
      resources[tenant] = [];
      for (let i = 0; i < (STACKS[tenant] ?? 1); i++) {
        const folder = join(tmpdir(), 'tenants', tenant, `fair-${i}`);
        const resource = await call('POST', `/v1/resources?tenant=${tenant}`, fileSetManifest(`${tenant}-${i}`, folder, []));
        resources[tenant]?.push(resource.id);
      }
    }
    const submit = async (tenant: string, count: number) => {
      const ids: string[] = [];
      const ofTenant = resources[tenant] as string[];
      for (let i = 0; i < count; i++)
        ids.push((await call('POST', `/v1/resources/${ofTenant[i % ofTenant.length]}/jobs`, { operation: 'up' })).id);
      return ids;
    };

    // The flood is queued before any runner is up: it is all waiting when the pool opens.
    const flood = await submit('fa', FLOOD);
    const { runners, log } = await startStandInRunners(t, stack, scratch, { count: RUNNERS, slots: SLOTS, standInMs: 300 });
    await until(
      async () => (await stack.models.StackJob.countDocuments({ tenantId: 'fa', status: 'succeeded' })) >= RUNNERS * SLOTS,
      'the flood running',
      60_000,
    );
    const later = [...(await submit('fb', EACH)), ...(await submit('fc', EACH))];
    const submitted = Date.now();

    const all = [...flood, ...later];
    await until(
      async () =>
        (await stack.models.StackJob.countDocuments({ _id: { $in: all }, status: { $in: ['succeeded', 'failed', 'cancelled'] } })) ===
        all.length,
      'every job ended',
      240_000,
      250,
    );
    const jobs = await stack.models.StackJob.find({ _id: { $in: all } }).lean<StackJobDoc[]>();
    const failed = jobs.filter((j) => j.status !== 'succeeded');
    t.same(
      failed.map((j) => `${j._id} ${j.status} ${j.error ?? ''}`),
      [],
      'every job succeeded',
    );
    if (failed.length) for (const runner of runners) t.comment(recentOutput(runner).slice(-3000));

    const runs = runsOf(log);
    const startedAt = (j: StackJobDoc) => new Date(j.startedAt as Date).getTime();
    // One job's duration as its tenant sees it: from its start to its end, the runner's work included.
    const durations = jobs
      .filter((j) => j.tenantId === 'fa')
      .map((j) => new Date(j.finishedAt as Date).getTime() - startedAt(j))
      .sort((a, b) => a - b);
    const oneJob = durations[Math.floor(durations.length / 2)] as number;
    for (const tenant of ['fb', 'fc']) {
      const own = jobs.filter((j) => j.tenantId === tenant);
      const first = own.reduce((a, b) => (startedAt(a) <= startedAt(b) ? a : b));
      const waited = startedAt(first) - new Date(first.createdAt as Date).getTime();
      t.ok(
        waited <= oneJob,
        `${tenant}'s first job started ${waited} ms after it was queued, behind ${FLOOD} of fa's (one job: ${oneJob} ms)`,
      );
    }

    // The contended period: once every slot turned over after b and c queued, until one of them has
    // started three quarters of its jobs (its last ones wait for its own busy stacks: it could not use its share).
    const startsOf = (tenant: string) =>
      jobs
        .filter((j) => j.tenantId === tenant)
        .map(startedAt)
        .sort((a, b) => a - b);
    const from = submitted + (durations.at(-1) as number);
    const to = Math.min(...['fb', 'fc'].map((tenant) => startsOf(tenant)[Math.floor(EACH * 0.75)] as number));
    t.ok((startsOf('fa').at(-1) as number) > to, 'the flood still waited when the period ended (everyone wanted slots throughout)');
    // A slot is a job's from its start to its end (the runner's work around Pulumi's included).
    const slots = jobs.map((j) => ({ tenant: j.tenantId as string, start: startedAt(j), end: new Date(j.finishedAt as Date).getTime() }));
    const time = slotTime(slots, from, to);
    const pulumi = Object.values(slotTime(runs, from, to)).reduce((a, b) => a + b, 0);
    const total = Object.values(time).reduce((a, b) => a + b, 0);
    const weightSum = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
    const ratios = Object.keys(WEIGHTS).map((tenant) => (time[tenant] ?? 0) / total / ((WEIGHTS[tenant] as number) / weightSum));
    const jain = ratios.reduce((a, b) => a + b, 0) ** 2 / (ratios.length * ratios.reduce((a, b) => a + b * b, 0));
    t.comment(
      `contended ${to - from} ms: slot-time share / weight share: ${Object.keys(WEIGHTS)
        .map((tenant, i) => `${tenant} ${(ratios[i] as number).toFixed(3)}`)
        .join(
          ', ',
        )}; Jain's index ${jain.toFixed(4)}; slots busy ${((100 * total) / (RUNNERS * SLOTS * (to - from))).toFixed(1)} % of the time, running Pulumi ${((100 * pulumi) / (RUNNERS * SLOTS * (to - from))).toFixed(1)} %`,
    );
    t.ok(to - from > 2 * oneJob, `a contended period of several jobs (${to - from} ms)`);
    Object.keys(WEIGHTS).forEach((tenant, i) => {
      const ratio = ratios[i] as number;
      t.ok(Math.abs(ratio - 1) <= 0.1, `${tenant}: its share of slot-time is ${ratio.toFixed(3)} of its weight's (within 10 %)`);
    });
  },
);
