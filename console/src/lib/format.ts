import { FINAL_STATUSES as FINAL, WAITING_STATUSES as WAITING } from './vocabulary.js';

/** "850 ms", "12 s", "3 m 05 s", "2 h 04 m". */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1_000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

/** A time as people read it in a table: "14:03:12" today, "3 Dec 14:03" before. */
export function when(iso: string | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString(undefined, { hour12: false })
    : date.toLocaleString(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false });
}

export { FINAL };

/** How a status is coloured: good, bad, waiting, active, neutral. */
export function tone(status: string): 'good' | 'bad' | 'wait' | 'active' | 'neutral' {
  if (status === 'succeeded' || status === 'done' || status === 'no_drift') return 'good';
  if (status === 'failed' || status === 'rejected' || status === 'stale' || status === 'expired' || status === 'drifted') return 'bad';
  if (status === 'running' || status === 'started') return 'active';
  if (WAITING.includes(status)) return 'wait';
  return 'neutral';
}

export function label(status: string): string {
  return status.replace(/_/g, ' ');
}

/** The name part of a Pulumi URN (after the last `::`). */
export function urnName(urn: string): string {
  const at = urn.lastIndexOf('::');
  return at >= 0 ? urn.slice(at + 2) : urn;
}
