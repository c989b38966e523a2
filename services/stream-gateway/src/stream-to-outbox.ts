import type { Logger, TenantViewer } from '@pds/shared';
import { JobNotFoundError, type JobStreamDeps, LinesSweptError, streamJob } from './job-stream.js';
import { CloseCodes, type Outbox } from './outbox.js';

/**
 * Streams one job into an outbox; resolves when the job's stream is over: `ended` after its end
 * message, or the close code of the error message it sent (4404 unknown job, 4410 lines swept, 1011 internal).
 */
export async function streamInto(
  deps: JobStreamDeps,
  jobId: string,
  from: number,
  outbox: Outbox,
  signal: AbortSignal,
  log: Pick<Logger, 'error'>,
  viewer: TenantViewer,
): Promise<'ended' | number> {
  try {
    await streamJob(deps, jobId, from, (message, raw) => outbox.send(message, raw), signal, viewer);
    return 'ended';
  } catch (err) {
    if (err instanceof JobNotFoundError || err instanceof LinesSweptError) {
      outbox.send({ type: 'error', jobId, code: err.code, message: err.message });
      return err.code;
    }
    log.error({ err, jobId }, 'stream failed');
    outbox.send({ type: 'error', jobId, code: CloseCodes.internal, message: 'stream failed; reconnect with from=<last seq>' });
    return CloseCodes.internal;
  }
}

/** The close reason for how a single-job stream ended. */
export function closeReason(result: 'ended' | number): [number, string] {
  if (result === 'ended') return [CloseCodes.normal, 'job ended'];
  const reasons: Record<number, string> = {
    [CloseCodes.notFound]: 'job not found',
    [CloseCodes.linesSwept]: 'job lines removed as old history',
  };
  return [result, reasons[result] ?? 'stream failed'];
}
