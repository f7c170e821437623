// The health port: /healthz (the process serves), /readyz (every import has a valid unexpired
// token and its files are written) and /metrics (Prometheus text). Separate from the proxies,
// and on all interfaces by default, since kubelet probes the pod IP.

import { createServer, type Server } from "node:http";
import { CONTENT_TYPE } from "./metrics.ts";

export interface ImportReadiness {
  name: string;
  /** Valid contents have been read at least once. */
  hasToken: boolean;
  expiry: Date | undefined;
  filesWritten: boolean;
  lastError: string | undefined;
}

export interface ReadinessReport {
  ready: boolean;
  /** One line per import, and one for the merged kubeconfig. */
  lines: string[];
}

/** Pure: the readiness of the sidecar at `now`. */
export function readiness(imports: ImportReadiness[], mergedWritten: boolean, now: number): ReadinessReport {
  const lines: string[] = [];
  let ready = imports.length > 0;
  for (const i of imports) {
    let problem: string | undefined;
    if (!i.hasToken) problem = `no valid token read yet${i.lastError ? ` (${i.lastError})` : ""}`;
    else if (i.expiry && i.expiry.getTime() <= now) problem = `token expired at ${i.expiry.toISOString()}`;
    else if (!i.filesWritten) problem = `files not written${i.lastError ? ` (${i.lastError})` : ""}`;
    if (problem) ready = false;
    lines.push(`[${problem ? "-" : "+"}]import ${i.name} ${problem ?? "ok"}`);
  }
  if (!mergedWritten) ready = false;
  lines.push(`[${mergedWritten ? "+" : "-"}]merged kubeconfig ${mergedWritten ? "ok" : "not written"}`);
  return { ready, lines };
}

export interface HealthServerOptions {
  address: string;
  port: number;
  readiness: () => ReadinessReport;
  metrics: () => string;
}

export function createHealthServer(options: HealthServerOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path === "/healthz" || path === "/livez") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const report = options.readiness();
      const verbose = /[?&]verbose(=|&|$)/.test(req.url ?? "");
      const body = verbose || !report.ready ? `${report.lines.join("\n")}\nreadyz check ${report.ready ? "passed" : "failed"}\n` : "ok\n";
      res.writeHead(report.ready ? 200 : 503, { "content-type": "text/plain", "cache-control": "no-store" }).end(body);
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": CONTENT_TYPE, "cache-control": "no-store" }).end(options.metrics());
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz, /readyz or /metrics\n");
    }
  });
}
