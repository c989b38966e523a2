/**
 * A small YAML writer for the JSON values a form makes (objects, arrays, strings, numbers,
 * booleans): what the deploy form shows beside itself and sends. Strings that YAML could read as
 * something else are double-quoted (JSON's quoting is valid YAML); multi-line text is a block.
 */
export function toYaml(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return value
      .map((item) => {
        const text = toYaml(item, indent + 2);
        return isBlock(item) ? `${pad}- ${text.trimStart()}` : `${pad}- ${text}`;
      })
      .join('\n');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return entries
      .map(([key, v]) => {
        const k = scalar(key, indent);
        if (isBlock(v)) return `${pad}${k}:\n${toYaml(v, indent + 2)}`;
        return `${pad}${k}: ${toYaml(v, indent + 2)}`;
      })
      .join('\n');
  }
  return scalar(value, indent);
}

function isBlock(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return value !== null && typeof value === 'object' && Object.keys(value).length > 0;
}

const PLAIN = /^[A-Za-z_/.][A-Za-z0-9 _./@-]*$/;
const AMBIGUOUS = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(value: unknown, indent: number): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'string') return String(value);
  if (value.includes('\n') && !/^\s/.test(value) && !/[\r\t]/.test(value) && !/ \n|\n\n\n*$/.test(value)) {
    const pad = ' '.repeat(indent);
    const chomp = value.endsWith('\n') ? '|' : '|-';
    const body = value.replace(/\n$/, '').split('\n');
    return `${chomp}\n${body.map((line) => (line ? pad + line : '')).join('\n')}`;
  }
  if (PLAIN.test(value) && !AMBIGUOUS.test(value) && !value.endsWith(' ')) return value;
  return JSON.stringify(value);
}
