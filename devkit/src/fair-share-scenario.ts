/**
 * The fair-share scenario of the runner pool, as the suite (e2e/test/fair-share.test.ts) and the
 * bench (scripts/src/bench/fairness-bench.ts) run it: one tenant floods the pool, then two more
 * queue theirs, with weights 1:1:2. Runs are measured from the jobs' own start and end (what holds a
 * slot) and from the stand-in CLI's log (what runs Pulumi).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Models, StackJobDoc } from '@pds/shared';

/** The three tenants, their weights and how many stacks each deploys to. */
export const FAIR_TENANTS = [
  { name: 'fa', weight: 1, stacks: 24 },
  { name: 'fb', weight: 1, stacks: 20 },
  { name: 'fc', weight: 2, stacks: 20 },
] as const;

export interface FairShareSetup {
  /** Calls the API as a platform admin (JSON, or a manifest as YAML); throws on anything but a success. */
  call(method: 'POST' | 'PUT', path: string, payload: object | string): Promise<{ id: string }>;
  models: Pick<Models, 'StackJob'>;
  /** Where LocalFileSet folders may be (the API's LOCAL_FILES_ROOT). */
  filesRoot: string;
  /** Starts the runner pool (once the flood is queued): its slots in all. */
  startRunners(): Promise<number>;
  /** The stand-in CLI's log (STAND_IN_LOG). */
  standInLog: string;
  flood: number;
  each: number;
  /** Waits, between two looks at the store, while jobs run. */
  pause(ms: number): Promise<void>;
  /** Told what the scenario is at (a step, and jobs ended of those waited for). */
  progress?(what: string): void;
}

export interface FairShareFigures {
  jobs: StackJobDoc[];
  /** Jobs that did not succeed: `id status error`. */
  failed: string[];
  /** A flood job's start to end, median (what a slot is held for). */
  oneJobMs: number;
  /** From a later tenant's first job queued to its start. */
  firstWaitMs: Record<string, number>;
  /** How many of the flood's jobs started while a later tenant's first job waited (a pool's worth at most, if it did not wait behind the flood). */
  firstPassedBy: Record<string, number>;
  /** The contended period: from every slot having turned over after the later tenants queued, until one of them has started 80 % of its jobs (its last ones wait for its own busy stacks). */
  contendedMs: number;
  /** Whether the flood still had jobs to start when the period ended. */
  floodStillWaiting: boolean;
  /** Each tenant's share of slot-time in the period, over its weight's share (1 = exactly its weight). */
  shareOfWeight: Record<string, number>;
  /** Jain's fairness index of those (1 = perfectly fair). */
  jain: number;
  /** Share of the pool's slot-time held by a job, and running Pulumi, in the period. */
  busy: number;
  pulumi: number;
  /** Jobs ended per second over the whole run. */
  jobsPerSecond: number;
}

interface Span {
  tenant: string;
  start: number;
  end: number;
}

/** Each tenant's time within [from, to]. */
function timeWithin(spans: Span[], from: number, to: number): Record<string, number> {
  const time: Record<string, number> = {};
  for (const s of spans) time[s.tenant] = (time[s.tenant] ?? 0) + Math.max(0, Math.min(s.end, to) - Math.max(s.start, from));
  return time;
}

/** The stand-in's runs (per stack, start and end alternate), with the tenant its stack's name begins with. */
function pulumiRuns(log: string): Span[] {
  const open = new Map<string, number>();
  const runs: Span[] = [];
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [what, fqdn = '', ns = '0'] = line.split(' ');
    const ms = Number(BigInt(ns) / 1_000_000n);
    if (what === 'start') open.set(fqdn, ms);
    else runs.push({ tenant: (fqdn.split('/').at(-1) ?? '').slice(0, 2), start: open.get(fqdn) ?? ms, end: ms });
  }
  return runs;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const time = (d: Date | null | undefined) => new Date(d as Date).getTime();

/** Jain's fairness index: (Σx)² / (n·Σx²). */
export function jainIndex(values: number[]): number {
  return sum(values) ** 2 / (values.length * sum(values.map((x) => x * x)));
}

/** Runs the scenario to its end and measures it. */
export async function runFairShare(setup: FairShareSetup): Promise<FairShareFigures> {
  const resources: Record<string, string[]> = {};
  for (const tenant of FAIR_TENANTS) {
    await setup.call('POST', '/v1/tenants', { name: tenant.name });
    await setup.call('PUT', `/v1/tenants/${tenant.name}/policy`, { weight: tenant.weight });
    const folder = (i: number) => join(setup.filesRoot, 'tenants', tenant.name, `fair-${i}`);
    const manifest = (i: number) =>
      `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${tenant.name}-${i}\nspec:\n  directory: ${folder(i)}\n  files: []\n`;
    resources[tenant.name] = [];
    for (let i = 0; i < tenant.stacks; i++)
      resources[tenant.name]?.push((await setup.call('POST', `/v1/resources?tenant=${tenant.name}`, manifest(i))).id);
  }
  const submit = async (tenant: string, count: number) => {
    const ids: string[] = [];
    const own = resources[tenant] as string[];
    for (let i = 0; i < count; i++)
      ids.push((await setup.call('POST', `/v1/resources/${own[i % own.length]}/jobs`, { operation: 'up' })).id);
    return ids;
  };
  const ended = (ids: string[]) =>
    setup.models.StackJob.countDocuments({ _id: { $in: ids }, status: { $in: ['succeeded', 'failed', 'cancelled'] } });

  // The flood is all queued before the pool opens; the others come once the flood fills it.
  const flood = await submit('fa', setup.flood);
  const began = Date.now();
  const slots = await setup.startRunners();
  while ((await ended(flood)) < slots) await setup.pause(100);
  const laterQueued = Date.now();
  const later = [...(await submit('fb', setup.each)), ...(await submit('fc', setup.each))];
  const submitted = Date.now();
  setup.progress?.(`${later.length} jobs of fb and fc queued`);
  for (let done = 0; done < later.length; done = await ended(later)) {
    setup.progress?.(`${done}/${later.length} of fb's and fc's jobs ended`);
    await setup.pause(1000);
  }
  const all = [...flood, ...later];
  while ((await ended(all)) < all.length) {
    const open = await setup.models.StackJob.find(
      { _id: { $in: all }, status: { $nin: ['succeeded', 'failed', 'cancelled'] } },
      { status: 1 },
    ).lean<{ _id: string; status: string }[]>();
    setup.progress?.(`still open: ${open.map((j) => `${j._id} ${j.status}`).join(', ')}`);
    await setup.pause(1000);
  }
  const jobsPerSecond = all.length / ((Date.now() - began) / 1000);

  const jobs = await setup.models.StackJob.find({ _id: { $in: all } }).lean<StackJobDoc[]>();
  const held: Span[] = jobs
    .filter((j) => j.startedAt)
    .map((j) => ({ tenant: j.tenantId as string, start: time(j.startedAt), end: time(j.finishedAt) }));
  const durations = held.filter((s) => s.tenant === 'fa').map((s) => s.end - s.start);
  durations.sort((a, b) => a - b);
  const startsOf = (tenant: string) => held.filter((s) => s.tenant === tenant).map((s) => s.start);
  const firstWaitMs: Record<string, number> = {};
  const firstPassedBy: Record<string, number> = {};
  for (const tenant of ['fb', 'fc']) {
    const first = jobs.filter((j) => j.tenantId === tenant).reduce((a, b) => (time(a.startedAt) <= time(b.startedAt) ? a : b));
    firstWaitMs[tenant] = time(first.startedAt) - time(first.createdAt);
    firstPassedBy[tenant] = startsOf('fa').filter((start) => start > time(first.createdAt) && start < time(first.startedAt)).length;
  }
  const to = Math.min(...['fb', 'fc'].map((tenant) => startsOf(tenant).sort((a, b) => a - b)[Math.floor(setup.each * 0.8)] as number));
  // Once every slot turned over (a job's time after the last was queued). A run too small to have
  // such a period (a bench's smoke run) measures from when the others were queued.
  const settled = submitted + (durations[Math.floor(durations.length / 2)] ?? 0);
  const from = settled < to ? settled : laterQueued;
  const within = timeWithin(held, from, to);
  const total = sum(Object.values(within));
  const weightSum = sum(FAIR_TENANTS.map((t) => t.weight));
  const shareOfWeight = Object.fromEntries(FAIR_TENANTS.map((t) => [t.name, (within[t.name] ?? 0) / total / (t.weight / weightSum)]));
  const capacity = slots * (to - from);
  return {
    jobs,
    failed: jobs.filter((j) => j.status !== 'succeeded').map((j) => `${j._id} ${j.status} ${j.error ?? ''}`),
    oneJobMs: durations[Math.floor(durations.length / 2)] ?? 0,
    firstWaitMs,
    firstPassedBy,
    contendedMs: to - from,
    floodStillWaiting: Math.max(...startsOf('fa')) > to,
    shareOfWeight,
    jain: jainIndex(Object.values(shareOfWeight)),
    busy: total / capacity,
    pulumi: sum(Object.values(timeWithin(pulumiRuns(setup.standInLog), from, to))) / capacity,
    jobsPerSecond,
  };
}
