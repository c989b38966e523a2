/**
 * Memory at volume: jobs whose CLI floods stdout (the stand-in with STAND_IN_LINES), through a real
 * runner — published at once, persisted in ordered chunks, with backpressure. Reported: the peak heap
 * growth for LARGE lines beside the same for SMALL lines in the same run (bounded memory means the
 * two are about equal), lines/s, and that every seq 1..n was persisted. BENCH_LINES sets LARGE
 * (default 300,000: FerretDB's upserts slow down as the chunk collection grows, so a 1,000,000-line
 * job takes many minutes there; the runner's memory stays flat throughout).
 */
import { performance } from 'node:perf_hooks';
import { jobWritableFile, standInIsolation } from '@pds/devkit';
import { type JobStatus, lineStore } from '@pds/shared';
import { startBenchService } from './bench-service.js';
import { STAND_IN } from './fleet-bench.js';
import { benchStep, fmt, row, sized } from './stats.js';

export async function linesBench(): Promise<void> {
  process.env.STAND_IN_MS = '0';
  const service = await startBenchService('lines', (scratch) => {
    process.env.STAND_IN_LOG = jobWritableFile(scratch, 'stand-in.log');
    return { PULUMI_BIN: STAND_IN, RUNNER_ISOLATION: standInIsolation(), JOB_ENV_ALLOW: 'STAND_IN_LOG,STAND_IN_MS,STAND_IN_LINES' };
  });
  const { models } = service;
  const resource = await service.createResource('flood');

  /** Runs one flooding job; returns its peak heap growth (MiB), seconds, and lines persisted in order. */
  async function flood(lines: number) {
    process.env.STAND_IN_LINES = String(lines);
    global.gc?.();
    const base = process.memoryUsage().heapUsed;
    let peak = base;
    let live = base; // after a full GC: what is held, not garbage waiting to be collected
    let ticks = 0;
    const sampler = setInterval(() => {
      if (++ticks % 25 === 0 && global.gc) {
        global.gc();
        live = Math.max(live, process.memoryUsage().heapUsed);
      }
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 20);
    const start = performance.now();
    const job = await service.queueJob(resource.id);
    await service.waitEnded([job.id]);
    const doc = (await models.StackJob.findById(job.id, { status: 1, lastSeq: 1 }).lean<{ status: JobStatus; lastSeq: number }>())!;
    const seconds = (performance.now() - start) / 1000;
    clearInterval(sampler);
    // Every seq 1..lastSeq is stored, in order (read back chunk by chunk).
    let expected = 1;
    for (let from = 0; from < doc.lastSeq; from += 10_000) {
      for (const line of await lineStore(models).read(job.id, from, 10_000)) {
        if (line.seq !== expected) throw new Error(`seq ${expected} missing (found ${line.seq})`);
        expected++;
      }
    }
    return {
      peakMiB: (peak - base) / 1024 / 1024,
      liveMiB: (live - base) / 1024 / 1024,
      seconds,
      persisted: expected - 1,
      lastSeq: doc.lastSeq,
      status: doc.status,
    };
  }

  try {
    console.log('\n== lines at volume (stand-in CLI flooding stdout; same run) ==');
    const largeLines = Number(process.env.BENCH_LINES ?? sized(300_000, 1_000));
    const smallLines = sized(50_000, 500);
    benchStep(`a job of ${smallLines} lines`);
    const small = await flood(smallLines);
    benchStep(`a job of ${largeLines} lines`);
    const large = await flood(largeLines);
    row(
      `peak heap growth, ${largeLines} vs ${smallLines} lines`,
      large.peakMiB,
      small.peakMiB,
      'MiB',
      `bounded: ratio near 1, not ${largeLines / smallLines}`,
    );
    row(
      `live heap growth (after GC, every 0.5 s), ${largeLines} vs ${smallLines}`,
      large.liveMiB,
      small.liveMiB,
      'MiB',
      `bounded: ratio near 1, not ${largeLines / smallLines}`,
    );
    console.log(
      `  ${largeLines}-line job: ${large.status}, ${large.persisted} lines persisted in order (lastSeq ${large.lastSeq}), ${fmt(large.seconds, 1)} s, ${fmt(large.persisted / large.seconds, 0)} lines/s`,
    );
  } finally {
    delete process.env.STAND_IN_LINES;
    await service.stop();
  }
}
