/**
 * A small Prometheus text-format registry: counters, gauges and histograms with labels. Enough for
 * the few figures each service exposes on /metrics, without a client library.
 */
type Labels = Record<string, string>;

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Map<string, number>;
  collect?: () => number;
  /** Histograms: upper bounds, and per label set the cumulative bucket counts, sum and count. */
  buckets?: number[];
  series?: Map<string, { counts: number[]; sum: number; count: number }>;
}

/** Seconds, from 5 ms to 10 s: covers a cached read to a slow dependency. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const labelKey = (labels: Labels) =>
  Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
    .join(',');

export class Metrics {
  private readonly metrics = new Map<string, Metric>();

  private metric(name: string, help: string, type: Metric['type']): Metric {
    let metric = this.metrics.get(name);
    if (!metric) {
      metric = { name, help, type, values: new Map() };
      this.metrics.set(name, metric);
    }
    return metric;
  }

  /** Adds to a counter. */
  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const metric = this.metric(name, help, 'counter');
    const key = labelKey(labels);
    metric.values.set(key, (metric.values.get(key) ?? 0) + by);
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, collect: () => number): void {
    this.metric(name, help, 'gauge').collect = collect;
  }

  /** Records one observation in a histogram. */
  observe(name: string, help: string, labels: Labels, value: number, buckets = DURATION_BUCKETS): void {
    const metric = this.metric(name, help, 'histogram');
    metric.buckets ??= buckets;
    metric.series ??= new Map();
    const key = labelKey(labels);
    let series = metric.series.get(key);
    if (!series) {
      series = { counts: metric.buckets.map(() => 0), sum: 0, count: 0 };
      metric.series.set(key, series);
    }
    metric.buckets.forEach((bound, i) => {
      if (value <= bound) series.counts[i]! += 1;
    });
    series.sum += value;
    series.count += 1;
  }

  /** The Prometheus exposition text. */
  render(): string {
    const lines: string[] = [];
    const withLabels = (key: string, extra?: string) => {
      const all = [key, extra].filter(Boolean).join(',');
      return all ? `{${all}}` : '';
    };
    for (const metric of this.metrics.values()) {
      lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
      if (metric.collect) lines.push(`${metric.name} ${metric.collect()}`);
      for (const [key, value] of metric.values) lines.push(`${metric.name}${withLabels(key)} ${value}`);
      for (const [key, series] of metric.series ?? []) {
        metric.buckets!.forEach((bound, i) => lines.push(`${metric.name}_bucket${withLabels(key, `le="${bound}"`)} ${series.counts[i]}`));
        lines.push(`${metric.name}_bucket${withLabels(key, 'le="+Inf"')} ${series.count}`);
        lines.push(`${metric.name}_sum${withLabels(key)} ${series.sum}`, `${metric.name}_count${withLabels(key)} ${series.count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
