import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recentOutput } from '@pds/devkit';
import type { StackJobDoc } from '@pds/shared';
import t from 'tap';
import { fileSetManifest, startStack, startStandInRunners } from './harness.js';

// 20 jobs per stack: enough to interleave three runners on every stack (the bench runs the fleet at size).
const JOBS = Number(process.env.FLEET_JOBS ?? 100);
const STACKS = 5;
const RUNNERS = 3;

t.test(
  `${JOBS} jobs over ${STACKS} stacks on ${RUNNERS} runner processes: every job ends, one run per stack at a time, in creation order`,
  async (t) => {
    const stack = await startStack(t, { RUNNER_CONCURRENCY: 1 }, { prefix: 'bull' });
    // The in-process runner of the harness stays out of it: only the three processes take jobs.
    await stack.runner.close();
    const scratch = await mkdtemp(join(tmpdir(), 'pds-fleet-'));
    t.teardown(() => rm(scratch, { recursive: true, force: true }));
    const { runners, log } = await startStandInRunners(t, stack, scratch, { count: RUNNERS, slots: 4, standInMs: 40 });

    const resources: string[] = [];
    for (let i = 0; i < STACKS; i++) {
      const res = await stack.api.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...stack.auth, 'content-type': 'application/yaml' },
        payload: fileSetManifest(`fleet-${i}`, join(scratch, `fleet-${i}`), []),
      });
      resources.push(res.json().id);
    }
    const created: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const res = await stack.api.inject({
        method: 'POST',
        url: `/v1/resources/${resources[i % STACKS]}/jobs`,
        headers: stack.auth,
        payload: { operation: i % 3 === 0 ? 'preview' : 'up' },
      });
      created.push(res.json().id);
    }

    // A waiting job shows where it stands: its place in its stack's line and the job holding the stack.
    const last = (await stack.api.inject({ method: 'GET', url: `/v1/jobs/${created.at(-1)}`, headers: stack.auth })).json();
    const waiting = last.status === 'queued' ? last : undefined;

    const deadline = Date.now() + 240_000;
    let jobs: StackJobDoc[] = [];
    for (;;) {
      jobs = await stack.models.StackJob.find({}).lean<StackJobDoc[]>();
      if (jobs.every((j) => ['succeeded', 'failed', 'cancelled'].includes(j.status)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.equal(jobs.length, JOBS);
    t.same(
      jobs.filter((j) => j.status !== 'succeeded').map((j) => `${j._id} ${j.status} ${j.error ?? ''}`),
      [],
      'every job succeeded',
    );
    if (jobs.some((j) => j.status !== 'succeeded')) {
      for (const runner of runners) t.comment(recentOutput(runner).slice(-4000));
    }
    if (JOBS >= 20) {
      t.ok(waiting, 'the last job created was still waiting when read');
      t.ok(
        waiting?.position > 0 && typeof waiting?.blockedBy === 'string',
        `it showed its place in line (${waiting?.position}) and the job blocking it`,
      );
    }

    // No two runs on one stack overlap: per stack, the stand-in's log alternates start, end.
    const runs = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string, string]);
    const byStack = new Map<string, [string, bigint][]>();
    for (const [what, fqdn, ns] of runs) byStack.set(fqdn, [...(byStack.get(fqdn) ?? []), [what, BigInt(ns)]]);
    t.equal(byStack.size, STACKS);
    for (const [fqdn, events] of byStack) {
      const sorted = [...events].sort((a, b) => (a[1] < b[1] ? -1 : 1));
      const alternates = sorted.every(([what], i) => what === (i % 2 === 0 ? 'start' : 'end'));
      t.ok(alternates, `${fqdn}: ${sorted.length / 2} runs, never two at once`);
    }

    // Per stack, the runs started in the order the jobs were created.
    for (let i = 0; i < STACKS; i++) {
      const ofStack = created.filter((_, n) => n % STACKS === i).map((id) => jobs.find((j) => j._id === id) as StackJobDoc);
      const starts = ofStack.map((j) => new Date(j.startedAt as Date).getTime());
      t.ok(
        starts.every((start, n) => n === 0 || start >= (starts[n - 1] as number)),
        `stack fleet-${i}: started in creation order`,
      );
    }

    // Other stacks proceed while one is busy: runs on different stacks overlapped in time.
    const intervals = [...byStack.values()].map((events) => {
      const sorted = [...events].sort((a, b) => (a[1] < b[1] ? -1 : 1));
      return [sorted[0]?.[1] ?? 0n, sorted.at(-1)?.[1] ?? 0n] as const;
    });
    const overlapping = intervals.some(([s1, e1], i) => intervals.some(([s2, e2], j) => i !== j && s1 < e2 && s2 < e1));
    t.ok(overlapping, 'stacks ran side by side');
  },
);
