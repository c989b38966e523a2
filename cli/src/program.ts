import { Command, CommanderError } from 'commander';
import { authCommands } from './commands/auth.js';
import { deployCommand } from './commands/deploy.js';
import { jobCommands } from './commands/jobs.js';
import { readCommands } from './commands/resources.js';
import { templateCommands } from './commands/templates.js';
import { Context } from './context.js';
import { CliError, EXIT } from './exit-codes.js';

/**
 * Runs `pds` with `argv` (without node and the script) and resolves to its exit code: the job's
 * outcome for the commands that follow one, 2 for a usage error, 4 for auth; an error is printed as
 * one line a person can act on, never a stack trace.
 */
export async function runCli(argv: string[], context = new Context()): Promise<number> {
  let exitCode: number = EXIT.succeeded;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command('pds')
    .description('The Pulumi deployment service from a terminal or a CI log.\nPDS_URL, PDS_GATEWAY_URL and PDS_TOKEN override `pds login`.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (text) => context.out(text.trimEnd()), writeErr: (text) => context.err(text.trimEnd()) })
    .showHelpAfterError('(pds --help lists the commands)');
  authCommands(program, context);
  deployCommand(program, context, setExit);
  jobCommands(program, context, setExit);
  readCommands(program, context);
  templateCommands(program, context);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.succeeded : EXIT.usage; // help, version, or a usage error (already said)
    if (err instanceof CliError) {
      context.err(`error: ${err.message}`);
      return err.code;
    }
    context.err(`error: ${(err as Error).message}`);
    return EXIT.failed;
  }
}
