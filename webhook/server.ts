// The webhook's HTTPS server: AdmissionReview v1 in, AdmissionReview out, around the pure
// decide/admissionResponse of admission.ts. Health on /healthz and /readyz. It never crashes on
// input: malformed requests get a 4xx with a one-line reason, failures inside get a well-formed
// AdmissionReview that refuses the pod (failurePolicy Fail would refuse it anyway, with a vaguer
// message). Logs say what was decided for which pod, never the pod's content or any token.
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { withTimeout } from "../common/deadline.ts";
import type { Logger } from "../common/log.ts";
import { admissionResponse, decide, parseAdmissionReview, type AdmissionRequest, type Decision, type Lookup } from "./admission.ts";
import type { MutateOptions } from "./mutate.ts";

export const DEFAULT_WEBHOOK_PATH = "/mutate-pods";
/** The API server caps admission payloads at 3 MiB in practice (etcd's request limit is 1.5 MiB per object). */
export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;
/**
 * Longer than the API server's idle timeout for webhook connections (Go's 90 s): the server must
 * never close an idle connection the client is about to reuse, or a POST fails and a pod is refused.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 125_000;
/** When the API server names no timeout (?timeout=), answer within this. */
const DEFAULT_DEADLINE_MS = 9_000;

export interface WebhookServerOptions {
  /** Host to bind ("" or "::" or "0.0.0.0" for all) and port (0: the kernel picks). */
  host: string;
  port: number;
  cert: string;
  key: string;
  /**
   * PEM CA of the client certificates allowed to post AdmissionReviews (the API server's, from its
   * --admission-control-config-file). Without it, any client may. Health paths need no certificate:
   * the kubelet's probes present none.
   */
  clientCa?: string;
  lookup: Lookup;
  mutate: MutateOptions;
  log: Logger;
  path?: string;
  maxBodyBytes?: number;
  /** Whether /readyz answers 200; default always. */
  ready?: () => boolean;
}

class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** "5s", "500ms", "1m30s" (Go durations as the API server writes them) in ms, or undefined. */
export function parseGoDuration(value: string | null): number | undefined {
  if (value === null || value === "") return undefined;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, "µs": 0.001, ns: 0.000001 };
  let total = 0;
  let rest = value;
  while (rest !== "") {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/.exec(rest);
    if (m === null) return undefined;
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        reject(new HttpError(413, `request body is larger than ${max} bytes`, { connection: "close" }));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, size));
    });
    req.on("error", (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
  });
}

function podName(request: AdmissionRequest): string | undefined {
  if (request.name) return request.name;
  const meta = (request.object as { metadata?: { name?: unknown; generateName?: unknown } } | undefined)?.metadata;
  if (typeof meta?.name === "string" && meta.name !== "") return meta.name;
  if (typeof meta?.generateName === "string" && meta.generateName !== "") return `${meta.generateName}*`;
  return undefined;
}

export class WebhookServer {
  private readonly server: Server;
  private readonly options: WebhookServerOptions;
  private readonly path: string;
  private readonly maxBody: number;
  private readonly log: Logger;
  private readonly sockets = new Set<Socket>();

  constructor(options: WebhookServerOptions) {
    this.options = options;
    this.path = options.path ?? DEFAULT_WEBHOOK_PATH;
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.log = options.log;
    this.server = createServer(
      {
        cert: options.cert,
        key: options.key,
        minVersion: "TLSv1.2",
        // Asked for, checked per request: probes come without one.
        ...(options.clientCa !== undefined ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        headersTimeout: 10_000,
        requestTimeout: 30_000,
      },
      (req, res) => {
        this.handle(req, res).catch((error: unknown) => this.fail(res, error));
      },
    );
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    this.server.on("tlsClientError", (error: Error) => this.log.debug("TLS handshake failed", { error: error.message }));
    this.server.on("clientError", (error: Error, socket) => {
      this.log.debug("bad HTTP request", { error: error.message });
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
  }

  /** Starts listening; resolves with the URL the API server should call (loopback name when bound to all). */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host === "" ? undefined : this.options.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this.url;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const address = this.server.address() as AddressInfo;
    const host = ["", "0.0.0.0", "::"].includes(this.options.host) ? "127.0.0.1" : address.address;
    return `https://${host.includes(":") ? `[${host}]` : host}:${address.port}${this.path}`;
  }

  /** New serving certificate for new connections (a renewed Secret). */
  setCertificate(cert: string, key: string): void {
    this.server.setSecureContext({ cert, key, minVersion: "TLSv1.2", ...(this.options.clientCa !== undefined ? { ca: this.options.clientCa } : {}) });
  }

  /** Stops accepting, lets requests in flight finish (bounded), closes idle keep-alive connections. */
  async close(graceMs = 5_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://webhook.invalid");
    if (url.pathname === "/healthz" || url.pathname === "/readyz" || url.pathname === "/livez") {
      if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, `${url.pathname} answers GET only`, { allow: "GET, HEAD" });
      const ok = url.pathname !== "/readyz" || (this.options.ready?.() ?? true);
      req.resume();
      return this.send(res, ok ? 200 : 503, "text/plain; charset=utf-8", ok ? "ok\n" : "not ready\n");
    }
    if (url.pathname !== this.path) {
      req.resume();
      throw new HttpError(404, `no such path ${JSON.stringify(url.pathname.slice(0, 100))}: AdmissionReviews go to POST ${this.path}`);
    }
    const tls = req.socket as TLSSocket;
    if (this.options.clientCa !== undefined && !tls.authorized) {
      req.resume();
      const presented = Object.keys(tls.getPeerCertificate()).length > 0;
      const why = presented ? `this one is not: ${String(tls.authorizationError)}` : "none was presented";
      throw new HttpError(403, `AdmissionReviews are served only to the API server's client certificate (${why})`);
    }
    if (req.method !== "POST") {
      req.resume();
      throw new HttpError(405, `${this.path} takes POST with an AdmissionReview, not ${req.method}`, { allow: "POST" });
    }
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") {
      req.resume();
      throw new HttpError(415, `content-type must be application/json, not ${JSON.stringify(req.headers["content-type"] ?? "")}`);
    }
    const length = Number(req.headers["content-length"]);
    if (Number.isFinite(length) && length > this.maxBody) {
      throw new HttpError(413, `request body of ${length} bytes is larger than ${this.maxBody} bytes`, { connection: "close" });
    }
    const started = performance.now();
    const body = await readBody(req, this.maxBody);
    const parsed = parseAdmissionReview(body);
    if (parsed.kind === "error") throw new HttpError(400, `not an AdmissionReview: ${parsed.message}`);
    const request = parsed.request;

    const apiTimeout = parseGoDuration(url.searchParams.get("timeout"));
    // Answer before the API server gives up, so that the user sees our reason, not a timeout.
    const deadline = apiTimeout === undefined ? DEFAULT_DEADLINE_MS : Math.max(apiTimeout - 500, apiTimeout * 0.8);
    const decision = await withTimeout(
      decide(request, this.options.lookup, this.options.mutate).catch(
        (error: unknown): Decision => ({ kind: "error", code: 500, message: `internal error: ${error instanceof Error ? error.message : String(error)}` }),
      ),
      "reading service account imports",
      deadline,
    ).catch((): Decision => ({ kind: "error", code: 504, message: `webhook timed out after ${Math.round(deadline)}ms reading service account imports` }));
    let review;
    try {
      review = admissionResponse(request, decision);
    } catch (error) {
      review = admissionResponse(request, { kind: "error", code: 500, message: `internal error: ${error instanceof Error ? error.message : String(error)}` });
    }
    this.send(res, 200, "application/json", JSON.stringify(review));

    const fields = {
      uid: request.uid,
      namespace: request.namespace,
      pod: podName(request),
      operation: request.operation,
      dryRun: request.dryRun === true ? true : undefined,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    };
    switch (decision.kind) {
      case "skip":
        this.log.debug("admitted unchanged", { ...fields, reason: decision.reason });
        break;
      case "patch":
        this.log.info("injected sidecar", { ...fields, patched: review.response.patch !== undefined });
        break;
      case "deny":
        this.log.info("refused pod", { ...fields, message: decision.message });
        break;
      case "error":
        this.log.warn("could not decide; refused pod", { ...fields, code: decision.code, message: decision.message });
        break;
    }
  }

  private send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  private fail(res: ServerResponse, error: unknown): void {
    const http = error instanceof HttpError ? error : undefined;
    if (http === undefined) this.log.error("request failed", { error: error instanceof Error ? error.message : String(error) });
    else this.log.debug("rejected request", { status: http.status, reason: http.message });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = http?.status ?? 500;
    const message = http?.message ?? "internal error";
    this.send(res, status, "text/plain; charset=utf-8", `${message}\n`, http?.headers ?? {});
  }
}
