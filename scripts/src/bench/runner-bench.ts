/**
 * Runner figures, each beside a raw baseline measured in the same run:
 * - a real `pulumi up` of the example through API → queue → runner → done, against the same up run
 *   directly (the runner's own Pulumi invocation, no API, queue, lock or line persistence);
 * - line publishing: the runner's line sink (publish at once + persist in chunks) against pipelined
 *   raw PUBLISH of the same lines; MongoDB writes per 1,000 lines.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { toolPath } from '@pds/devkit';
import { LineSink, runPulumi } from '@pds/runner';
import { jobChannel, lineStore, parseManifest, stackInputYaml } from '@pds/shared';
import { startBenchService } from './bench-service.js';
import { benchStep, fmt, percentile, row, sized } from './stats.js';

const manifest = (name: string, directory: string, content: string) =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: ${directory}\n  files:\n    - path: a.txt\n      content: ${content}\n`;

/** Each step's end (ms from the start: the job's creation, or the direct run's call), per round. */
type Timelines = Map<string, number[]>;

function keep(timelines: Timelines, steps: { step: string; ms: number }[]): void {
  for (const { step, ms } of steps) timelines.set(step, [...(timelines.get(step) ?? []), ms]);
}

/**
 * Where the time of one real up goes: the median end of each step, through the service (from the
 * API's 202) and run directly (from the call), side by side where the step is the same.
 */
function printSteps(service: Timelines, direct: Timelines): void {
  console.log(`\n${'step of one real up (median end, ms)'.padEnd(46)} ${'service'.padStart(10)} ${'direct'.padStart(10)}`);
  for (const [step, ends] of service) {
    const same = direct.get(step);
    console.log(
      `${step.padEnd(46)} ${fmt(percentile(ends, 50), 0).padStart(10)} ${(same ? fmt(percentile(same, 50), 0) : '').padStart(10)}`,
    );
  }
}

export async function runnerBench(): Promise<void> {
  const serviceSteps: Timelines = new Map();
  const directSteps: Timelines = new Map();
  let measuring = false;
  const benchService = await startBenchService('runner', () => ({ PULUMI_BIN: toolPath('pulumi') }), {
    onTimeline: (_jobId, steps) => measuring && keep(serviceSteps, steps),
  });
  const { app, auth, config, kinds, models, publisher, scratch, logger } = benchService;
  try {
    console.log('\n== runner (ours vs raw, same run) ==');
    // 1. A real up through the whole service against the same up run directly.
    const kind = kinds.get('LocalFileSet');
    if (!kind) throw new Error('LocalFileSet module missing');
    const rounds = sized(5, 1);
    const direct: number[] = [];
    const service: number[] = [];
    const resource = (
      await app.inject({
        method: 'POST',
        url: '/v1/resources',
        headers: { ...auth, 'content-type': 'application/yaml' },
        payload: manifest('via-service', join(scratch, 'svc'), 'v0'),
      })
    ).json();
    for (let i = 1; i <= rounds; i++) {
      benchStep(`real up ${i} of ${rounds}, direct`);
      // Direct: the same Pulumi invocation the runner makes, on a stack of its own.
      const text = manifest('direct', join(scratch, 'direct'), `v${i}`);
      let start = performance.now();
      const steps: { step: string; ms: number }[] = [];
      const result = await runPulumi({
        onStep: (step) => steps.push({ step, ms: performance.now() - start }),
        pulumiBin: config.PULUMI_BIN,
        pulumiHome: join(config.WORK_DIR, 'pulumi-home'),
        backendUrl: config.PULUMI_BACKEND_URL,
        passphrase: '',
        programDir: kind.dir,
        main: kind.main,
        project: kind.project,
        workspaceDir: join(config.WORK_DIR, 'direct', randomUUID()),
        stackFqdn: 'organization/local-file-set/direct',
        operation: 'up',
        options: {},
        env: { STACK_INPUT_YAML: stackInputYaml(parseManifest(text)) },
        signal: new AbortController().signal,
        graceMs: 10_000,
        onLine: () => undefined,
        onEvent: () => undefined,
      });
      if (result.exitCode !== 0) throw new Error(`direct up failed: ${result.errors.join('; ')}`);
      direct.push(performance.now() - start);
      keep(directSteps, [...steps, { step: 'end', ms: performance.now() - start }]);

      benchStep(`real up ${i} of ${rounds}, through the service`);
      // Through the service: PUT the manifest, POST the job, wait until it is done.
      await app.inject({
        method: 'PUT',
        url: `/v1/resources/${resource.id}`,
        headers: { ...auth, 'content-type': 'application/yaml' },
        payload: manifest('via-service', join(scratch, 'svc'), `v${i}`),
      });
      start = performance.now();
      measuring = true;
      const job = (
        await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload: { operation: 'up' } })
      ).json();
      // Heard from its end message, then read once: polling the store would load FerretDB (and so
      // the machine the run shares) for the whole run.
      const [status] = await benchService.waitEnded([job.id]);
      if (status !== 'succeeded') throw new Error(`service up ended ${status}`);
      service.push(performance.now() - start);
    }
    const [s50, d50] = [percentile(service, 50), percentile(direct, 50)];
    const diff = Math.round(s50 - d50);
    row(`real pulumi up, median of ${rounds}`, s50, d50, 'ms', `<= +5% or <= +150 ms (here ${diff >= 0 ? '+' : ''}${diff} ms)`);
    printSteps(serviceSteps, directSteps);

    // 2. Line publishing.
    benchStep('line publishing');
    const lines = sized(100_000, 2_000);
    const raw = performance.now();
    const pipeline = publisher.pipeline();
    for (let i = 1; i <= lines; i++)
      pipeline.publish(
        jobChannel('raw'),
        JSON.stringify({ type: 'line', jobId: 'raw', seq: i, stream: 'stdout', text: `line ${i}`, ts: new Date().toISOString() }),
      );
    await pipeline.exec();
    const rawMs = performance.now() - raw;
    const jobId = randomUUID();
    let writes = 0;
    const writer = lineStore(models).writer(jobId);
    const counted = {
      append: async (batch: Parameters<typeof writer.append>[0]) => {
        writes++;
        await writer.append(batch);
      },
    };
    const sink = new LineSink({ jobId, publisher, store: counted, logger });
    const ours = performance.now();
    for (let i = 1; i <= lines; i++) {
      sink.line('stdout', `line ${i}`);
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    const publishedMs = performance.now() - ours;
    await sink.close();
    const persistedMs = performance.now() - ours;
    row('lines published per second', lines / (publishedMs / 1000), lines / (rawMs / 1000), 'lines/s', '>= 50% of pipelined PUBLISH');
    console.log(`${'lines published and persisted per second'.padEnd(46)} ${(lines / (persistedMs / 1000)).toFixed(0).padStart(10)}`);
    console.log(`${'MongoDB writes per 1,000 lines'.padEnd(46)} ${((writes * 1000) / lines).toFixed(2).padStart(10)}   goal: <= 10`);
  } finally {
    await benchService.stop();
  }
}
