import { ApiClient } from './api-client.js';
import { type Credentials, loadCredentials } from './credentials.js';
import { CliError, EXIT, exitCodeOfStatus } from './exit-codes.js';
import { followJob, LinesSweptError, type StreamMessage } from './follow.js';
import { colours, endLine } from './output.js';

/** How a follower shows a job: each message, reconnection notes, and its last frame before the outcome line. */
export interface Follower {
  show(message: StreamMessage): void;
  /** A note about the connection (default: a line on stderr). */
  note?(text: string): void;
  /** Called once the job has ended or following stopped, before anything else is printed. */
  done?(): void;
}

/** What a command needs: who it is and where the service is (read when first asked), and how to print. */
export class Context {
  private credentials?: Credentials;

  constructor(
    readonly env: NodeJS.ProcessEnv = process.env,
    readonly out: (text: string) => void = (text) => void process.stdout.write(`${text}\n`),
    readonly err: (text: string) => void = (text) => void process.stderr.write(`${text}\n`),
  ) {}

  async login(): Promise<Credentials> {
    this.credentials ??= await loadCredentials(this.env);
    return this.credentials;
  }

  async api(): Promise<ApiClient> {
    return new ApiClient(await this.login());
  }

  /**
   * Follows a job to its end, showing each message with `follower`, and returns the exit code its
   * outcome means. Ctrl-C detaches (exit 130) and says how to cancel: the job goes on. A job whose
   * lines were swept as old history: its status from the API decides.
   */
  async follow(jobId: string, from: number, follower: Follower): Promise<number> {
    const credentials = await this.login();
    const detach = () => {
      follower.done?.();
      this.err(`\ndetached from job ${jobId}; it goes on. Stop it with: pds cancel ${jobId}`);
      process.exit(EXIT.interrupted);
    };
    process.once('SIGINT', detach);
    try {
      const end = await followJob(credentials, jobId, {
        from,
        onMessage: (message) => follower.show(message),
        onReconnect: (ms, why) => (follower.note ?? this.err)(`lost the stream (${why}); trying again in ${Math.round(ms / 1000)} s`),
        ...this.giveUp(),
      });
      follower.done?.();
      this.err(endLine(end, colours(process.stderr, this.env)));
      return exitCodeOfStatus(end.status ?? 'failed');
    } catch (err) {
      follower.done?.();
      if (!(err instanceof LinesSweptError)) throw err;
      const job = await (await this.api()).call<{ status: string }>(`/v1/jobs/${encodeURIComponent(jobId)}`);
      this.err(`${err.message}; it ended ${job.status}`);
      return exitCodeOfStatus(job.status);
    } finally {
      process.off('SIGINT', detach);
    }
  }

  /** PDS_FOLLOW_GIVE_UP_SECONDS, when set: a whole number of seconds, or a usage error. */
  private giveUp(): { giveUpMs?: number } {
    const raw = this.env.PDS_FOLLOW_GIVE_UP_SECONDS;
    if (raw === undefined || raw === '') return {};
    const seconds = Number(raw);
    if (!Number.isInteger(seconds) || seconds < 1)
      throw new CliError(`PDS_FOLLOW_GIVE_UP_SECONDS must be a whole number of seconds ≥ 1, not ${JSON.stringify(raw)}`, EXIT.usage);
    return { giveUpMs: seconds * 1000 };
  }
}
