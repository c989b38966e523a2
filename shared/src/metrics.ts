/**
 * A small Prometheus text-format registry: counters and gauges with labels. Enough for the few
 * figures each service exposes on /metrics, without a client library.
 */
type Labels = Record<string, string>;

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, number>;
  collect?: () => number;
}

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

  /** The Prometheus exposition text. */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.metrics.values()) {
      lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
      if (metric.collect) lines.push(`${metric.name} ${metric.collect()}`);
      for (const [key, value] of metric.values) lines.push(`${metric.name}${key ? `{${key}}` : ''} ${value}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
