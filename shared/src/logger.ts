import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/** Paths pino blanks in every log line: auth headers and anything that may carry a secret. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.query.token',
  'headers.authorization',
  'authorization',
  'token',
  'password',
  'secret',
  'credentials',
  '*.secret',
  '*.password',
  '*.token',
  '*.credentials',
  '*.secretAccessKey',
  '*.clientSecret',
  '*.apiToken',
  '*.kubeconfig',
  '*.serviceAccountKey',
  '*.sessionToken',
  '*.private_key',
];

/**
 * How a request appears in logs: the path without its query string (a query may carry a ticket or,
 * from an old client, a token), never the headers.
 */
export function requestForLog(req: { method?: string; url?: string; id?: unknown; ip?: string; socket?: { remotePort?: number } }) {
  return { method: req.method, url: req.url?.split('?')[0], id: req.id, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/** The one base logger of a service. Pretty output only when stdout is a terminal. */
export function createLogger(
  options: { name: string; level: string } & LoggerOptions,
  destination?: { write(line: string): void },
): Logger {
  const pretty = !destination && process.stdout.isTTY && options.level !== 'silent';
  const settings = {
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { req: requestForLog },
    ...options,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  };
  return destination ? pino(settings, destination) : pino(settings);
}
