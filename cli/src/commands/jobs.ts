import type { Command } from 'commander';
import type { Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';
import type { StreamMessage } from '../follow.js';
import { LiveTable } from '../live-table.js';
import { changeLine, describeJob, type JobView, jobsTable, outputOption } from '../output.js';

/** Every job command's exit code is the job's: 0 succeeded, 1 failed, 3 cancelled or rejected. */
export function jobCommands(program: Command, context: Context, setExit: (code: number) => void): void {
  const jobs = program.command('jobs').description('list and show jobs');
  jobs
    .command('ls')
    .description('the newest jobs first')
    .option('--status <status>', 'only those in this status (queued, running, succeeded, failed, …)')
    .option('--resource <id>', "only this resource's")
    .option('--limit <n>', 'how many', '20')
    .addOption(outputOption())
    .addHelpText('after', '\nExamples:\n  pds jobs ls --status running\n  pds jobs ls -o json | jq -r ".items[].id"')
    .action(async (options: { status?: string; resource?: string; limit: string; output: string }) => {
      const query = new URLSearchParams({ limit: options.limit });
      if (options.status) query.set('status', options.status);
      if (options.resource) query.set('resourceId', options.resource);
      const page = await (await context.api()).call<{ items: JobView[]; nextCursor?: string }>(`/v1/jobs?${query}`);
      context.out(options.output === 'json' ? JSON.stringify(page, null, 2) : jobsTable(page.items));
    });
  jobs
    .command('show')
    .description('a job: its status, place in line, changes and error')
    .argument('<job>', 'the job id')
    .addOption(outputOption())
    .addHelpText('after', '\nExample:\n  pds jobs show 2b6c… -o json')
    .action(async (id: string, options: { output: string }) => {
      const job = await (await context.api()).call<JobView>(`/v1/jobs/${encodeURIComponent(id)}`);
      context.out(options.output === 'json' ? JSON.stringify(job, null, 2) : describeJob(job));
    });

  program
    .command('logs')
    .description("a job's output: what is stored, or followed live to its end with -f")
    .argument('<job>', 'the job id')
    .option('-f, --follow', 'follow it live to its end (exit code: the job’s)')
    .option('--since-seq <n>', 'only what came after this seq', '0')
    .option('--events', 'the structured engine events too, one JSON object per line')
    .addHelpText('after', '\nExamples:\n  pds logs 2b6c…\n  pds logs 2b6c… -f --since-seq 120')
    .action(async (id: string, options: { follow?: boolean; sinceSeq: string; events?: boolean }) => {
      const from = nonNegative(options.sinceSeq, '--since-seq');
      const show = (message: StreamMessage) => {
        if (message.type === 'line') (message.stream === 'stderr' ? context.err : context.out)(message.text ?? '');
        else if (message.type === 'event' && options.events) context.out(JSON.stringify(message.event));
      };
      if (options.follow) return setExit(await context.follow(id, from, { show }));
      await printStoredLines(context, id, from, show);
    });

  program
    .command('watch')
    .description('follow a job to its end: at a terminal a live table of its resources; in a log one line per change')
    .argument('<job>', 'the job id')
    .addHelpText(
      'after',
      '\nExit code: 0 succeeded, 1 failed, 3 cancelled or rejected, 5 the gateway stayed away 5 minutes, 130 Ctrl-C (the job goes on).',
    )
    .action(async (id: string) => {
      // A person at a terminal gets the table redrawn in place; a log (CI, a pipe) one line per change.
      const live = process.stdout.isTTY && !context.env.CI ? new LiveTable((text) => void process.stdout.write(text)) : undefined;
      const code = await context.follow(
        id,
        0,
        live
          ? { show: (message) => live.take(message), note: (text) => live.note(text), done: () => live.finish() }
          : {
              show: (message) => {
                const line = changeLine(message);
                if (line) context.out(line);
              },
            },
      );
      setExit(code);
    });

  program
    .command('cancel')
    .description('cancel a job (a queued one at once; a running one gets SIGINT, then is stopped)')
    .argument('<job>', 'the job id')
    .option('--wait', 'wait until it has ended (exit code: the job’s)')
    .action(async (id: string, options: { wait?: boolean }) => {
      await (await context.api()).call(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST', body: {} });
      context.out(`cancel of job ${id} asked`);
      if (options.wait) setExit(await context.follow(id, 0, { show: () => undefined }));
    });

  for (const decision of ['approve', 'reject'] as const) {
    program
      .command(decision)
      .description(`${decision} a job awaiting approval, after reading its changes (pds jobs show)`)
      .argument('<job>', 'the job id')
      .option('-m, --message <text>', 'a comment, kept with the decision')
      .addOption(outputOption())
      .action(async (id: string, options: { message?: string; output: string }) => {
        const body = { decision, ...(options.message ? { comment: options.message } : {}) };
        const job = await (await context.api()).call<JobView>(`/v1/jobs/${encodeURIComponent(id)}/approvals`, { method: 'POST', body });
        context.out(
          options.output === 'json'
            ? JSON.stringify(job, null, 2)
            : `job ${id} ${decision === 'approve' ? 'approved' : 'rejected'}: now ${job.status}`,
        );
      });
  }
}

/** The stored lines of a job after `from`, page by page (a job still running: what is stored so far). */
async function printStoredLines(context: Context, id: string, from: number, show: (message: StreamMessage) => void): Promise<void> {
  const api = await context.api();
  let after = from;
  for (;;) {
    const page = await api.call<{ items?: StreamMessage[] } | StreamMessage[]>(
      `/v1/jobs/${encodeURIComponent(id)}/lines?from=${after}&limit=1000`,
    );
    const items = Array.isArray(page) ? page : (page.items ?? []);
    for (const item of items) show({ ...item, type: item.type ?? (item.stream === 'event' ? 'event' : 'line') });
    if (items.length < 1000) return;
    after = items.at(-1)?.seq ?? after;
  }
}

export function nonNegative(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`${name} must be a whole number ≥ 0, not ${JSON.stringify(value)}`, EXIT.usage);
  return n;
}
