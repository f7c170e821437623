// Prometheus metrics, hand-written: a handful of counters, gauges and one histogram in the
// text exposition format (version 0.0.4). Small enough not to need a client library.

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels));

interface Family {
  render(): string;
}

class Series<T> {
  readonly #items = new Map<string, { labels: Labels; value: T }>();
  readonly #make: () => T;
  constructor(make: () => T) {
    this.#make = make;
  }
  get(labels: Labels): { labels: Labels; value: T } {
    const key = keyOf(labels);
    let item = this.#items.get(key);
    if (!item) {
      item = { labels: { ...labels }, value: this.#make() };
      this.#items.set(key, item);
    }
    return item;
  }
  delete(labels: Labels): void {
    this.#items.delete(keyOf(labels));
  }
  *[Symbol.iterator]() {
    yield* this.#items.values();
  }
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${name} ${type}\n`;
}

export class Counter implements Family {
  readonly name: string;
  readonly help: string;
  readonly #series = new Series<{ n: number }>(() => ({ n: 0 }));
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.#series.get(labels).value.n += by;
  }
  /** Makes a series show as 0 before anything happened. */
  init(labels: Labels): void {
    this.#series.get(labels);
  }
  value(labels: Labels = {}): number {
    return this.#series.get(labels).value.n;
  }
  render(): string {
    return renderSingle(this.name, this.help, "counter", this.#series);
  }
}

/** A counter's or gauge's exposition: one sample per label set. */
function renderSingle(name: string, help: string, type: string, series: Series<{ n: number }>): string {
  let out = header(name, help, type);
  for (const { labels, value } of series) out += `${name}${labelText(labels)} ${formatValue(value.n)}\n`;
  return out;
}

export class Gauge implements Family {
  readonly name: string;
  readonly help: string;
  readonly #series = new Series<{ n: number }>(() => ({ n: 0 }));
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  set(labels: Labels, value: number): void {
    this.#series.get(labels).value.n = value;
  }
  delete(labels: Labels): void {
    this.#series.delete(labels);
  }
  render(): string {
    return renderSingle(this.name, this.help, "gauge", this.#series);
  }
}

export class Histogram implements Family {
  readonly name: string;
  readonly help: string;
  readonly buckets: number[];
  readonly #series: Series<{ counts: number[]; sum: number; count: number }>;
  constructor(name: string, help: string, buckets: number[] = LATENCY_BUCKETS) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.#series = new Series(() => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
  }
  observe(labels: Labels, seconds: number): void {
    const s = this.#series.get(labels).value;
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += seconds;
    s.count++;
  }
  render(): string {
    let out = header(this.name, this.help, "histogram");
    for (const { labels, value } of this.#series) {
      this.buckets.forEach((b, i) => (out += `${this.name}_bucket${labelText(labels, ["le", formatValue(b)])} ${value.counts[i]}\n`));
      out += `${this.name}_bucket${labelText(labels, ["le", "+Inf"])} ${value.count}\n`;
      out += `${this.name}_sum${labelText(labels)} ${formatValue(value.sum)}\n`;
      out += `${this.name}_count${labelText(labels)} ${value.count}\n`;
    }
    return out;
  }
}

/** The sidecar's metrics. */
export class SidecarMetrics {
  readonly tokenExpiry = new Gauge("mcsa_sidecar_token_expiry_timestamp_seconds", "When the current token of the import expires, in Unix seconds (absent if the token has no exp claim).");
  readonly ready = new Gauge("mcsa_sidecar_import_ready", "1 if the import has a valid unexpired token and its files are written, else 0.");
  readonly refreshes = new Counter("mcsa_sidecar_refreshes_total", "New import Secret contents read and applied (files written, proxy updated).");
  readonly refreshFailures = new Counter("mcsa_sidecar_refresh_failures_total", "Failed reads, checks or writes of an import's Secret and files.");
  readonly requests = new Counter("mcsa_sidecar_proxy_requests_total", "Requests through an import's proxy, by response status code (0: no response).");
  readonly latency = new Histogram("mcsa_sidecar_proxy_request_duration_seconds", "Time until the response headers of a proxied request (a watch counts until its headers).");

  initImport(name: string): void {
    this.refreshes.init({ import: name });
    this.refreshFailures.init({ import: name });
    this.ready.set({ import: name }, 0);
  }

  render(): string {
    return [this.tokenExpiry, this.ready, this.refreshes, this.refreshFailures, this.requests, this.latency].map((f) => f.render()).join("");
  }
}
