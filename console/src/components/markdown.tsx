import type { ComponentChildren } from 'preact';

/** `code` spans within a line of text. */
function inline(text: string): ComponentChildren {
  return text
    .split(/(`[^`]+`)/)
    .map((part, i) => (part.startsWith('`') && part.endsWith('`') && part.length > 2 ? <code key={i}>{part.slice(1, -1)}</code> : part));
}

/**
 * A template's readme: headings, paragraphs, lists and code blocks, built as elements (never as
 * HTML from the text, which is the template author's).
 */
export function Markdown({ text }: { text: string }) {
  const blocks: ComponentChildren[] = [];
  const lines = text.replace(/\r/g, '').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    if (line.startsWith('```')) {
      const code: string[] = [];
      for (i++; i < lines.length && !(lines[i] as string).startsWith('```'); i++) code.push(lines[i] as string);
      i++;
      blocks.push(<pre class="code">{code.join('\n')}</pre>);
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(6, (line.match(/^#+/)?.[0].length ?? 1) + 2);
      const Tag = `h${level}` as 'h3';
      blocks.push(<Tag>{inline(line.replace(/^#+ /, ''))}</Tag>);
      i++;
    } else if (/^\s*[-*] /.test(line)) {
      const items: string[] = [];
      for (; i < lines.length && /^\s*[-*] /.test(lines[i] as string); i++) items.push((lines[i] as string).replace(/^\s*[-*] /, ''));
      blocks.push(
        <ul>
          {items.map((item, k) => (
            <li key={k}>{inline(item)}</li>
          ))}
        </ul>,
      );
    } else if (line.trim() === '') {
      i++;
    } else {
      const para: string[] = [];
      for (; i < lines.length && (lines[i] as string).trim() !== '' && !/^(#|```|\s*[-*] )/.test(lines[i] as string); i++)
        para.push(lines[i] as string);
      blocks.push(<p>{inline(para.join(' '))}</p>);
    }
  }
  return <div class="markdown">{blocks}</div>;
}
