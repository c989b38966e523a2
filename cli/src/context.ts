import { ApiClient } from './api-client.js';
import { type Credentials, loadCredentials } from './credentials.js';
import { exitCodeOfStatus, EXIT } from './exit-codes.js';
import { followJob, type StreamMessage } from './follow.js';
import { endLine } from './output.js';

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
   * Follows a job to its end, showing each message as `show` renders it, and returns the exit code
   * its outcome means. Ctrl-C detaches (exit 130) and says how to cancel: the job goes on.
   */
  async follow(jobId: string, from: number, show: (message: StreamMessage) => void, beforeEndLine?: () => void): Promise<number> {
    const credentials = await this.login();
    const detach = () => {
      this.err(`\ndetached from job ${jobId}; it goes on. Stop it with: pds cancel ${jobId}`);
      process.exit(EXIT.interrupted);
    };
    process.once('SIGINT', detach);
    try {
      const end = await followJob(credentials, jobId, {
        from,
        onMessage: show,
        onReconnect: (ms, why) => this.err(`lost the stream (${why}); trying again in ${Math.round(ms / 1000)} s`),
        ...(this.env.PDS_FOLLOW_GIVE_UP_SECONDS ? { giveUpMs: Number(this.env.PDS_FOLLOW_GIVE_UP_SECONDS) * 1000 } : {}),
      });
      beforeEndLine?.(); // a live table draws its last frame first
      this.err(endLine(end));
      return exitCodeOfStatus(end.status ?? 'failed');
    } finally {
      process.off('SIGINT', detach);
    }
  }
}
