// The health port: /healthz (the process serves), /readyz (the pod may serve: every import has
// been usable once and at least one still is), /readyz/<import> (that import is usable now) and
// /metrics (Prometheus text). Separate from the proxies, and on all interfaces by default, since
// kubelet probes the pod IP; what other pods may read there is only /healthz and a bare /readyz.

import { createServer, type Server } from "node:http";
import { CONTENT_TYPE } from "./metrics.ts";

export interface ImportReadiness {
  name: string;
  /** Valid contents have been read at least once. */
  hasToken: boolean;
  expiry: Date | undefined;
  /** The files of the current contents are written (stays true while newer ones are written: the old set is still whole). */
  filesWritten: boolean;
  lastError: string | undefined;
}

export interface ReadinessReport {
  ready: boolean;
  /** One line per import, and one for the merged kubeconfig. */
  lines: string[];
  /** Each import on its own: one expired import does not hide the others. */
  imports: { name: string; ready: boolean; line: string }[];
}

/** Pure: why an import is not usable at `now`, or undefined when it is. */
function importProblem(i: ImportReadiness, now: number): string | undefined {
  if (!i.hasToken) return `no valid token read yet${i.lastError ? ` (${i.lastError})` : ""}`;
  if (!i.filesWritten) return `files not written${i.lastError ? ` (${i.lastError})` : ""}`;
  if (i.expiry && i.expiry.getTime() <= now) return `token expired at ${i.expiry.toISOString()}`;
  return undefined;
}

/**
 * Pure: the readiness of the sidecar at `now`. The pod is ready once every import has been usable
 * (app containers start only then: the startup probe) and while at least one still is, so a pod that
 * uses several clusters keeps serving when one of them fails; each import's own state is on
 * /readyz/<import> and in the verbose lines.
 */
export function readiness(imports: ImportReadiness[], mergedWritten: boolean, now: number): ReadinessReport {
  const each = imports.map((i) => {
    const problem = importProblem(i, now);
    return { name: i.name, ready: problem === undefined, line: `[${problem ? "-" : "+"}]import ${i.name} ${problem ?? "ok"}` };
  });
  const allStarted = imports.length > 0 && imports.every((i) => i.hasToken && i.filesWritten);
  const ready = allStarted && mergedWritten && each.some((i) => i.ready);
  const lines = [...each.map((i) => i.line), `[${mergedWritten ? "+" : "-"}]merged kubeconfig ${mergedWritten ? "ok" : "not written"}`];
  return { ready, lines, imports: each };
}

export interface HealthServerOptions {
  address: string;
  port: number;
  readiness: () => ReadinessReport;
  metrics: () => string;
  /** Whether the peer is inside the pod; default: its address is loopback. For tests. */
  isLocal?: (remoteAddress: string | undefined) => boolean;
}

/** Loopback: 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice("::ffff:".length) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === "::1";
}

const LOCAL_ONLY = "only from inside the pod (127.0.0.1 or ::1): /metrics, /readyz/<import> and /readyz?verbose\n";

/**
 * Other pods reach this port (the kubelet probes the pod IP, so it listens on every interface):
 * they get /healthz and a bare /readyz (ok or failed, nothing about the imports). Details, per
 * import state and metrics go to loopback peers only: the pod's own containers.
 */
export function createHealthServer(options: HealthServerOptions): Server {
  const isLocal = options.isLocal ?? isLoopback;
  return createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    const local = isLocal(req.socket.remoteAddress);
    if (path === "/healthz" || path === "/livez") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const report = options.readiness();
      const verbose = /[?&]verbose(=|&|$)/.test(req.url ?? "");
      if (verbose && !local) {
        res.writeHead(403, { "content-type": "text/plain" }).end(LOCAL_ONLY);
        return;
      }
      const detail = local && (verbose || !report.ready);
      const body = detail ? `${report.lines.join("\n")}\nreadyz check ${report.ready ? "passed" : "failed"}\n` : report.ready ? "ok\n" : "failed\n";
      res.writeHead(report.ready ? 200 : 503, { "content-type": "text/plain", "cache-control": "no-store" }).end(body);
    } else if (!local && (path?.startsWith("/readyz/") || path === "/metrics")) {
      res.writeHead(403, { "content-type": "text/plain" }).end(LOCAL_ONLY);
    } else if (path?.startsWith("/readyz/")) {
      let name: string;
      try {
        name = decodeURIComponent(path.slice("/readyz/".length));
      } catch {
        res.writeHead(400, { "content-type": "text/plain" }).end("malformed import name\n");
        return;
      }
      const one = options.readiness().imports.find((i) => i.name === name);
      if (!one) res.writeHead(404, { "content-type": "text/plain" }).end(`no import named "${name}" in this pod\n`);
      else res.writeHead(one.ready ? 200 : 503, { "content-type": "text/plain", "cache-control": "no-store" }).end(`${one.line}\n`);
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": CONTENT_TYPE, "cache-control": "no-store" }).end(options.metrics());
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz, /readyz or /metrics\n");
    }
  });
}
