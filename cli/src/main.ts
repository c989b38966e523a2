#!/usr/bin/env node
import { runCli } from './program.js';

// `pds logs JOB | head`: the reader went away; that is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

process.exitCode = await runCli(process.argv.slice(2));
