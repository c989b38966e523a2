import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ansiSpans, plain } from '../lib/ansi.js';
import { href, replaceQuery } from '../lib/router.js';

export interface LogLine {
  seq: number;
  stream: 'stdout' | 'stderr';
  text: string;
  /** The text without escape sequences, lower-cased: made once as the line arrives, so a search of 100,000 lines is a scan, not 100,000 regexes. */
  search: string;
}

export function logLine(seq: number, stream: LogLine['stream'], text: string): LogLine {
  return { seq, stream, text, search: plain(text).toLowerCase() };
}

const ROW = 20;
const OVERSCAN = 20;

/**
 * A job's log, virtualised: only the rows in view are in the page, so 100,000 lines scroll as
 * smoothly as 100. Follows the end while the reader is at the bottom, pauses when they scroll up,
 * resumes when they come back (or press Follow). Search, copy, download, and a line anchor in the URL.
 */
export function LogView({ lines, version, jobId, anchor }: { lines: LogLine[]; version: number; jobId: string; anchor?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(anchor === undefined);
  const [range, setRange] = useState({ top: 0, height: 480 });
  const [search, setSearch] = useState('');
  const [hit, setHit] = useState(0);
  const [selected, setSelected] = useState<number | undefined>(anchor);
  const anchored = useRef(false);

  const matches = useMemo(() => {
    if (search.length < 2) return [] as number[];
    const needle = search.toLowerCase();
    const found: number[] = [];
    lines.forEach((line, i) => line.search.includes(needle) && found.push(i));
    return found;
    // A new version is a longer array (lines are only appended).
  }, [search, version, lines]);

  const scrollToIndex = (index: number) => {
    const el = box.current;
    if (!el) return;
    setFollow(false);
    el.scrollTop = Math.max(0, index * ROW - el.clientHeight / 2);
  };

  // Keep to the end while following; jump to the URL's line once it has arrived.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (!anchored.current && anchor !== undefined) {
      const index = lines.findIndex((l) => l.seq === anchor);
      if (index >= 0) {
        anchored.current = true;
        scrollToIndex(index);
        return;
      }
    }
    if (follow) el.scrollTop = el.scrollHeight;
  }, [version, follow]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setRange({ top: el.scrollTop, height: el.clientHeight });
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    measure();
    return () => observer.disconnect();
  }, []);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    setRange({ top: el.scrollTop, height: el.clientHeight });
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const first = Math.max(0, Math.floor(range.top / ROW) - OVERSCAN);
  const last = Math.min(lines.length, Math.ceil((range.top + range.height) / ROW) + OVERSCAN);
  const current = matches[hit];
  const goTo = (delta: number) => {
    if (matches.length === 0) return;
    const next = (hit + delta + matches.length) % matches.length;
    setHit(next);
    scrollToIndex(matches[next] as number);
  };
  const text = () => lines.map((l) => plain(l.text)).join('\n') + '\n';
  const download = () => {
    const url = URL.createObjectURL(new Blob([text()], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `job-${jobId}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1_000);
  };

  return (
    <div class="log">
      <div class="log-bar" role="toolbar" aria-label="Log">
        <label class="field inline search">
          <span class="sr-only">Search the log</span>
          <input
            type="search"
            placeholder="Search the log"
            value={search}
            onInput={(e) => (setSearch((e.target as HTMLInputElement).value), setHit(0))}
            onKeyDown={(e) => e.key === 'Enter' && (e.preventDefault(), goTo(e.shiftKey ? -1 : 1))}
          />
        </label>
        <span class="muted small" aria-live="polite">
          {search.length >= 2
            ? matches.length
              ? `${hit + 1} of ${matches.length}`
              : 'no match'
            : `${lines.length.toLocaleString()} lines`}
        </span>
        <button type="button" class="ghost small" onClick={() => goTo(-1)} disabled={!matches.length} aria-label="Previous match">
          ↑
        </button>
        <button type="button" class="ghost small" onClick={() => goTo(1)} disabled={!matches.length} aria-label="Next match">
          ↓
        </button>
        <span class="spacer" />
        <button type="button" class="ghost small" onClick={() => void navigator.clipboard?.writeText(text())}>
          Copy
        </button>
        <button type="button" class="ghost small" onClick={download}>
          Download
        </button>
        <button type="button" class={follow ? 'small on' : 'ghost small'} aria-pressed={follow} onClick={() => setFollow(!follow)}>
          Follow
        </button>
      </div>
      <div class="log-box" ref={box} onScroll={onScroll} tabIndex={0} aria-label="Log lines" role="log">
        <div class="log-spacer" style={{ height: `${lines.length * ROW}px` }}>
          {lines.slice(first, last).map((line, i) => {
            const index = first + i;
            const classes = [
              'log-line',
              line.stream === 'stderr' ? 'err' : '',
              index === current ? 'hit' : '',
              line.seq === selected ? 'sel' : '',
            ]
              .filter(Boolean)
              .join(' ');
            return (
              <div key={line.seq} class={classes} style={{ top: `${index * ROW}px` }} data-seq={line.seq}>
                <a
                  class="ln"
                  href={href(['jobs', jobId], { line: line.seq })}
                  onClick={(e) => {
                    e.preventDefault();
                    setSelected(line.seq);
                    replaceQuery({ line: line.seq });
                  }}
                  aria-label={`Line ${line.seq}`}
                  tabIndex={-1}
                >
                  {line.seq}
                </a>
                <span class="lt">
                  {ansiSpans(line.text).map((span, k) => (
                    <span key={k} class={span.cls || undefined}>
                      {span.text}
                    </span>
                  ))}
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
