import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  reload(): void;
}

/**
 * Loads with `load` when `deps` change, and again every `everyMs` while the tab is visible (a page
 * that shows live state: a list of jobs). A newer load's answer wins over an older one's.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => mine === generation.current && setState({ data, loading: false }),
      (error: Error) => mine === generation.current && error.name !== 'AbortError' && setState((s) => ({ ...s, error, loading: false })),
    );
    return controller;
  }, deps);
  useEffect(() => {
    const controller = run();
    if (!everyMs) return () => controller.abort();
    const timer = setInterval(() => document.visibilityState === 'visible' && run(), everyMs);
    return () => {
      controller.abort();
      clearInterval(timer);
    };
  }, [run, everyMs]);
  return { ...state, reload: () => void run() };
}

/** A clock that ticks every `ms` while `running` (running timers, elapsed times). */
export function useNow(running: boolean, ms = 1_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [running, ms]);
  return running ? now : Date.now();
}

/**
 * A form's submit: prevents the page's navigation, runs `work`, and keeps its error (the API's own
 * message) and whether it is under way, for the form to show.
 */
export function useSubmit(work: () => Promise<void>) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event?: Event) => {
    event?.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      await work();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return { submit, error, busy };
}

/** Cursor pages kept in the component (a panel's list): the cursors walked so far, newest first. */
export function useCursorStack() {
  const [stack, setStack] = useState<string[]>([]);
  return {
    cursor: stack.at(-1),
    depth: stack.length,
    older: (next: string | undefined) => next && setStack([...stack, next]),
    newer: () => setStack(stack.slice(0, -1)),
  };
}
