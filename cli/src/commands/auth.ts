import type { Command } from 'commander';
import { ApiClient } from '../api-client.js';
import { assertTokenShape, credentialsPath, forgetCredentials, saveCredentials, trimSlash } from '../credentials.js';
import type { Context } from '../context.js';
import { CliError, EXIT } from '../exit-codes.js';

/** `pds login` and `pds logout`. */
export function authCommands(program: Command, context: Context): void {
  program
    .command('login')
    .description('save the API URL and a token for the next commands (PDS_URL / PDS_TOKEN win over them, and are never written)')
    .argument('[url]', 'the API, e.g. https://deploy.example.com', 'http://localhost:3000')
    .option('--gateway <url>', "the stream gateway, when it is not behind the API's address (compose: http://localhost:3001)")
    .option('--with-token', 'read the token from stdin (for scripts: echo "$TOKEN" | pds login --with-token URL)')
    .addHelpText(
      'after',
      '\nExamples:\n  pds login https://deploy.example.com\n  echo "$TOKEN" | pds login --with-token http://localhost:3000 --gateway http://localhost:3001',
    )
    .action(async (url: string, options: { gateway?: string; withToken?: boolean }) => {
      const api = trimSlash(url);
      if (options.withToken && process.stdin.isTTY)
        throw new CliError(
          '--with-token reads the token from stdin: pipe it in (echo "$TOKEN" | pds login --with-token …), or leave the flag out to be asked',
          EXIT.usage,
        );
      const token = options.withToken ? await readStdin() : await promptHidden('Token: ');
      if (!token) throw new CliError('no token given (pass it on stdin with --with-token, or type it when asked)', EXIT.usage);
      assertTokenShape(token);
      const credentials = { url: api, gatewayUrl: trimSlash(options.gateway ?? api), token };
      // Checked before it is kept: a token that cannot list jobs is no use here.
      await new ApiClient(credentials).call('/v1/jobs?limit=1');
      const path = await saveCredentials(credentials, context.env);
      context.out(`logged in to ${api} (credentials in ${path}, readable by you only)`);
    });
  program
    .command('logout')
    .description('forget the saved token')
    .action(async () => {
      await forgetCredentials(context.env);
      context.out(`logged out (${credentialsPath(context.env)} removed)`);
    });
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.trim();
}

/** Asks on the terminal without echoing what is typed; from a pipe, reads its first line. */
async function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) return readStdin();
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  let typed = '';
  try {
    for await (const chunk of input) {
      for (const char of String(chunk)) {
        if (char === '\r' || char === '\n') return typed.trim();
        if (char === '\u0003') throw new CliError('interrupted', EXIT.interrupted);
        if (char === '\u007f') typed = typed.slice(0, -1);
        else typed += char;
      }
    }
    return typed.trim();
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}
