/* eslint-disable no-control-regex -- ANSI sequences start with ESC (\x1b). */

/** One run of text in one style. */
export interface Span {
  text: string;
  /** CSS classes: `fg-1`…`fg-15` (and `fg-16` for black), `b` (bold), `dim`, `u`. */
  cls: string;
}

const ESC = /\x1b\[([0-9;]*)m/g;

/**
 * Splits a line with ANSI SGR sequences (what Pulumi prints in colour) into styled spans. Other
 * CSI sequences are dropped; 256 and RGB colours fall back to the default colour.
 */
export function ansiSpans(line: string): Span[] {
  if (!line.includes('\x1b')) return [{ text: line, cls: '' }];
  const spans: Span[] = [];
  let fg = 0;
  let bold = false;
  let dim = false;
  let underline = false;
  let last = 0;
  const push = (text: string) => {
    if (!text) return;
    const cls = [fg ? `fg-${fg}` : '', bold ? 'b' : '', dim ? 'dim' : '', underline ? 'u' : ''].filter(Boolean).join(' ');
    spans.push({ text, cls });
  };
  for (const match of line.matchAll(ESC)) {
    push(line.slice(last, match.index));
    last = (match.index ?? 0) + match[0].length;
    const codes = (match[1] || '0').split(';').map(Number);
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i] as number;
      if (code === 0) [fg, bold, dim, underline] = [0, false, false, false];
      else if (code === 1) bold = true;
      else if (code === 2) dim = true;
      else if (code === 4) underline = true;
      else if (code === 22) [bold, dim] = [false, false];
      else if (code === 24) underline = false;
      else if (code >= 30 && code <= 37) fg = code - 30 || 16;
      else if (code >= 90 && code <= 97) fg = code - 90 + 8;
      else if (code === 39) fg = 0;
      else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : 4;
    }
  }
  push(line.slice(last));
  return spans.map((span) => ({ ...span, text: span.text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '') }));
}

/** The line without any escape sequence (search, copy, download). */
export function plain(line: string): string {
  return line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}
