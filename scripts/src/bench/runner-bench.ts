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
import { isFinalStatus, type JobStatus, jobChannel, lineStore, parseManifest, stackInputYaml } from '@pds/shared';
import { startBenchService } from './bench-service.js';
import { percentile, row, sleep } from './stats.js';

const manifest = (name: string, directory: string, content: string) =>
  `apiVersion: deploy.pulumi.dev/v1\nkind: LocalFileSet\nmetadata:\n  name: ${name}\nspec:\n  directory: ${directory}\n  files:\n    - path: a.txt\n      content: ${content}\n`;

export async function runnerBench(): Promise<void> {
  const service = await startBenchService('runner', () => ({ PULUMI_BIN: toolPath('pulumi') }));
  const { app, auth, config, kinds, models, publisher, scratch, logger } = service;
  try {
    console.log('\n== runner (ours vs raw, same run) ==');
    // 1. A real up through the whole service against the same up run directly.
    const kind = kinds.get('LocalFileSet');
    if (!kind) throw new Error('LocalFileSet module missing');
    const rounds = 5;
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
      // Direct: the same Pulumi invocation the runner makes, on a stack of its own.
      const text = manifest('direct', join(scratch, 'direct'), `v${i}`);
      let start = performance.now();
      const result = await runPulumi({
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

      // Through the service: PUT the manifest, POST the job, wait until it is done.
      await app.inject({
        method: 'PUT',
        url: `/v1/resources/${resource.id}`,
        headers: { ...auth, 'content-type': 'application/yaml' },
        payload: manifest('via-service', join(scratch, 'svc'), `v${i}`),
      });
      start = performance.now();
      const job = (
        await app.inject({ method: 'POST', url: `/v1/resources/${resource.id}/jobs`, headers: auth, payload: { operation: 'up' } })
      ).json();
      for (;;) {
        const doc = await models.StackJob.findById(job.id, { status: 1 }).lean<{ status: JobStatus }>();
        if (doc && isFinalStatus(doc.status)) {
          if (doc.status !== 'succeeded') throw new Error(`service up ended ${doc.status}`);
          break;
        }
        await sleep(5);
      }
      service.push(performance.now() - start);
    }
    const [s50, d50] = [percentile(service, 50), percentile(direct, 50)];
    row(`real pulumi up, median of ${rounds}`, s50, d50, 'ms', `<= +5% or <= +150 ms (here +${Math.round(s50 - d50)} ms)`);

    // 2. Line publishing.
    const lines = 100_000;
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
    await service.stop();
  }
}
