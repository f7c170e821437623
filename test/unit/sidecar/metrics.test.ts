import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, SidecarMetrics } from "../../../sidecar/metrics.ts";

describe("metrics", () => {
  it("render counters and gauges in the text format, labels escaped", () => {
    const c = new Counter("x_total", "Things.");
    c.inc({ import: "a" });
    c.inc({ import: "a" }, 2);
    c.inc({ import: 'q"\\\n' });
    expect(c.render()).toBe('# HELP x_total Things.\n# TYPE x_total counter\nx_total{import="a"} 3\nx_total{import="q\\"\\\\\\n"} 1\n');
    const g = new Gauge("g", "G.");
    g.set({}, 1.5);
    expect(g.render()).toBe("# HELP g G.\n# TYPE g gauge\ng 1.5\n");
    g.delete({});
    expect(g.render()).toBe("# HELP g G.\n# TYPE g gauge\n");
  });

  it("render a cumulative histogram with +Inf, sum and count", () => {
    const h = new Histogram("d_seconds", "D.", [0.1, 1]);
    h.observe({ import: "a" }, 0.05);
    h.observe({ import: "a" }, 0.5);
    h.observe({ import: "a" }, 3);
    expect(h.render()).toBe(
      [
        "# HELP d_seconds D.",
        "# TYPE d_seconds histogram",
        'd_seconds_bucket{import="a",le="0.1"} 1',
        'd_seconds_bucket{import="a",le="1"} 2',
        'd_seconds_bucket{import="a",le="+Inf"} 3',
        'd_seconds_sum{import="a"} 3.55',
        'd_seconds_count{import="a"} 3',
        "",
      ].join("\n"),
    );
  });

  it("show every import's counters from the start, and every family", () => {
    const m = new SidecarMetrics();
    m.initImport("a");
    m.tokenExpiry.set({ import: "a" }, 1_900_000_000);
    m.requests.inc({ import: "a", code: "200" });
    m.latency.observe({ import: "a" }, 0.002);
    const text = m.render();
    for (const line of [
      'mcsa_sidecar_token_expiry_timestamp_seconds{import="a"} 1900000000',
      'mcsa_sidecar_import_ready{import="a"} 0',
      'mcsa_sidecar_refreshes_total{import="a"} 0',
      'mcsa_sidecar_refresh_failures_total{import="a"} 0',
      'mcsa_sidecar_proxy_requests_total{import="a",code="200"} 1',
      'mcsa_sidecar_proxy_request_duration_seconds_bucket{import="a",le="0.005"} 1',
      'mcsa_sidecar_proxy_request_duration_seconds_count{import="a"} 1',
    ]) {
      expect(text.split("\n")).toContain(line);
    }
    // Every sample line belongs to a family declared before it.
    const declared = new Set<string>();
    for (const line of text.trimEnd().split("\n")) {
      const t = /^# TYPE (\S+) /.exec(line);
      if (t?.[1]) declared.add(t[1]);
      else if (!line.startsWith("#")) expect([...declared].some((d) => line.startsWith(d))).toBe(true);
    }
  });
});
