/**
 * Reads what a Dockerfile's stages declare — base, ENV, USER, HEALTHCHECK, ENTRYPOINT, CMD — with
 * inheritance between stages (`FROM base AS api`), so tests can check the images' settings and start
 * the services exactly as the images would, without a Docker engine.
 */
export interface DockerStage {
  name: string;
  from: string;
  env: Record<string, string>;
  user?: string;
  healthcheck?: string;
  entrypoint?: string[];
  cmd?: string[];
  /** The raw instructions of this stage alone (keyword in upper case, rest of the line). */
  instructions: { keyword: string; args: string }[];
}

/** Joins continuation lines and drops comments and blank lines. */
function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (line.trim().startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push((current + line).trim());
    current = '';
  }
  return lines;
}

/** `KEY=value KEY2="two words"` (or the legacy `KEY value`) into pairs. */
function parseEnv(args: string, into: Record<string, string>): void {
  if (!/^\S+=/.test(args)) {
    const [key, ...rest] = args.split(/\s+/);
    into[key!] = rest.join(' ');
    return;
  }
  for (const match of args.matchAll(/(\S+?)=("([^"]*)"|\S*)/g)) {
    const value = match[3] ?? match[2] ?? '';
    into[match[1]!] = value.replace(/\$(\w+)|\$\{(\w+)\}/g, (_m, a: string, b: string) => into[a ?? b] ?? '');
  }
}

export function parseDockerfile(text: string): Map<string, DockerStage> {
  const stages = new Map<string, DockerStage>();
  let stage: DockerStage | undefined;
  for (const line of logicalLines(text)) {
    const [keywordRaw, ...rest] = line.split(/\s+/);
    const keyword = keywordRaw!.toUpperCase();
    const args = rest.join(' ');
    if (keyword === 'FROM') {
      const match = args.match(/^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i);
      const from = match?.[1] ?? args;
      const parent = stages.get(from);
      stage = {
        name: match?.[2] ?? `stage-${stages.size}`,
        from,
        env: { ...parent?.env },
        user: parent?.user,
        healthcheck: parent?.healthcheck,
        entrypoint: parent?.entrypoint,
        cmd: parent?.cmd,
        instructions: [],
      };
      stages.set(stage.name, stage);
      continue;
    }
    if (!stage) continue; // ARG before the first FROM
    stage.instructions.push({ keyword, args });
    if (keyword === 'ENV') parseEnv(args, stage.env);
    else if (keyword === 'USER') stage.user = args;
    else if (keyword === 'HEALTHCHECK') stage.healthcheck = args;
    else if (keyword === 'ENTRYPOINT') stage.entrypoint = args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
    else if (keyword === 'CMD') stage.cmd = args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
  }
  return stages;
}
