// One import's local proxy: a loopback HTTP listener that forwards to the remote API server with
// the import's current bearer token, verifying the server with the import's CA. Responses stream
// (watch), upgrades (exec, attach, port-forward over SPDY or WebSocket, when the pod allows them)
// are tunnelled, and the app's own credentials and impersonation headers never reach the remote.
// Every body it sends upstream is framed by the proxy itself (sidecar/proxy-rules.ts), so the
// remote reads exactly the requests the app's bytes made, one for one, on pooled connections.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { ProxyStream } from "../common/api.ts";
import type { Logger } from "../common/log.ts";
import type { SidecarMetrics } from "./metrics.ts";
import {
  filterResponseHeaders,
  rawStatusResponse,
  refusal,
  requestFraming,
  STATUS_HEADERS,
  statusBody,
  targetPath,
  upstreamRequestHeaders,
  type Framing,
  type RequestPolicy,
  type StatusReply,
} from "./proxy-rules.ts";

export interface ProxyCredentials {
  token: string;
  /** From the token's exp claim; undefined if it has none. */
  expiry: Date | undefined;
  server: string;
  caPem: string;
}

export interface ImportProxyOptions {
  name: string;
  port: number;
  address: string;
  metrics: SidecarMetrics;
  logger: Logger;
  /** How long to wait for the remote's TCP and TLS handshake (default 10 s). */
  connectTimeoutMs?: number;
  /** Streaming subresources to pass (exec, attach, portforward); none by default. */
  allow?: readonly ProxyStream[];
  now?: () => number;
}

interface Upstream {
  token: string;
  expiry: Date | undefined;
  url: URL;
  caPem: string;
  agent: Agent;
}

const RETRYABLE = new Set(["GET", "HEAD", "OPTIONS"]);

/** How long a request that arrives before the first credentials waits for them. */
const FIRST_CREDENTIALS_WAIT_MS = 2_000;

export class ImportProxy {
  readonly name: string;
  readonly address: string;
  #port: number;
  readonly #metrics: SidecarMetrics;
  readonly #log: Logger;
  readonly #connectTimeoutMs: number;
  readonly #now: () => number;
  readonly #server: Server;
  readonly #tunnels = new Set<Duplex>();
  readonly #policy: RequestPolicy;
  /** Responses not yet finished per app connection: a parse error may be answered only when there are none. */
  readonly #inFlight = new WeakMap<object, number>();
  /** Every response not yet finished, so that close() can wait for them. */
  readonly #active = new Set<ServerResponse>();
  #draining = false;
  #upstream: Upstream | undefined;
  #remoteDown = false;
  /** Resolved by the first credentials: requests that arrive before them wait a moment, not get a 503. */
  readonly #firstCredentials = Promise.withResolvers<void>();
  #waitingForCredentials = 0;

  constructor(options: ImportProxyOptions) {
    this.name = options.name;
    this.#port = options.port;
    this.address = options.address;
    this.#metrics = options.metrics;
    this.#log = options.logger.with({ import: options.name });
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#policy = { allow: new Set(options.allow ?? []) };
    this.#server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#afterFirstCredentials(() => this.#onRequest(req, res)));
    this.#server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#afterFirstCredentials(() => this.#onUpgrade(req, socket, head)));
    // CONNECT: refused by the request rules (Node would otherwise close the connection unanswered).
    this.#server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(error, socket));
  }

  get port(): number {
    return this.#port;
  }

  /**
   * The proxy listens before the sidecar has read the Secret (a taken port is reported first), so a
   * request in that window (milliseconds at start, or after a restart while apps keep calling)
   * waits up to FIRST_CREDENTIALS_WAIT_MS for the first credentials before it is refused with 503.
   */
  #afterFirstCredentials(handle: () => void): void {
    if (this.#upstream !== undefined) {
      handle();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_CREDENTIALS_WAIT_MS)));
    this.#waitingForCredentials++;
    void Promise.race([this.#firstCredentials.promise, waited]).then(() => {
      this.#waitingForCredentials--;
      clearTimeout(timer);
      handle();
    });
  }

  /** Requests held until the first credentials arrive (tests wait on it). */
  get waitingForCredentials(): number {
    return this.#waitingForCredentials;
  }

  /** Takes new credentials; a new CA or server gets a new connection pool, a new token does not. */
  setCredentials(c: ProxyCredentials): void {
    this.#firstCredentials.resolve();
    const old = this.#upstream;
    const url = new URL(c.server);
    if (old && old.caPem === c.caPem && old.url.href === url.href) {
      this.#upstream = { ...old, token: c.token, expiry: c.expiry };
      return;
    }
    const agent = new Agent({ keepAlive: true, ca: c.caPem, maxFreeSockets: 64 });
    this.#upstream = { token: c.token, expiry: c.expiry, url, caPem: c.caPem, agent };
    if (old) retire(old.agent);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#port, this.address, () => {
        this.#server.off("error", reject);
        const address = this.#server.address();
        if (typeof address === "object" && address) this.#port = address.port;
        resolve();
      });
    });
  }

  /**
   * Stops accepting, lets the requests under way finish for up to drainMs (a watch ends with the
   * drain), then cuts what is left. Requests that arrive meanwhile on open connections get 503.
   * Returns how many requests were still running when the drain ended.
   */
  async close(drainMs = 0): Promise<number> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    // Each connection closes once its answer is sent, so no client sends one more request to us.
    for (const res of this.#active) if (!res.headersSent) res.shouldKeepAlive = false;
    if (this.#active.size > 0 && drainMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      const drained = new Promise<void>((resolve) => {
        const check = () => (this.#active.size === 0 ? resolve() : undefined);
        for (const res of this.#active) res.once("close", check);
      });
      await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
      clearTimeout(timer);
    }
    const cut = this.#active.size;
    this.#server.closeAllConnections();
    for (const t of this.#tunnels) t.destroy();
    this.#upstream?.agent.destroy();
    await closed;
    return cut;
  }

  /** Why a request cannot go through now, or the upstream to send it to, the path and the body's framing. */
  #admit(req: IncomingMessage, upgrade: boolean): { refuse: StatusReply } | { upstream: Upstream; path: string; framing: Framing } {
    const head = { method: req.method ?? "", url: req.url ?? "", httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, upgrade };
    const refused = refusal(head, this.#policy);
    if (refused !== undefined) return { refuse: refused };
    const upstream = this.#upstream;
    if (!upstream) {
      return { refuse: { code: 503, reason: "ServiceUnavailable", message: `service account import ${this.name}: no valid token read yet` } };
    }
    if (upstream.expiry && upstream.expiry.getTime() <= this.#now()) {
      return {
        refuse: {
          code: 503,
          reason: "ServiceUnavailable",
          message: `service account import ${this.name}: the token expired at ${upstream.expiry.toISOString()} and no new one has arrived`,
        },
      };
    }
    const path = targetPath(upstream.url.pathname, req.url);
    const framing = requestFraming(req.rawHeaders);
    // Both were checked by the request rules; this keeps the types honest.
    if (path === undefined || "problem" in framing) return { refuse: { code: 400, reason: "BadRequest", message: "the request is not accepted" } };
    return { upstream, path, framing };
  }

  #options(upstream: Upstream, req: IncomingMessage, path: string, framing: Framing, upgrade: boolean): RequestOptions {
    return {
      protocol: "https:",
      hostname: upstream.url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: upstream.url.port || 443,
      method: req.method,
      path,
      headers: upstreamRequestHeaders(req.rawHeaders, {
        host: upstream.url.host,
        token: upstream.token,
        framing,
        upgrade,
      }) as unknown as RequestOptions["headers"],
      // Upgraded connections leave the pool anyway: give them their own, with the same CA.
      ...(upgrade ? { agent: false, ca: upstream.caPem } : { agent: upstream.agent }),
    };
  }

  #record(code: number, started: number): void {
    this.#metrics.requests.inc({ import: this.name, code: String(code) });
    this.#metrics.latency.observe({ import: this.name }, (performance.now() - started) / 1000);
  }

  #remoteFailed(error: Error): StatusReply {
    if (!this.#remoteDown) {
      this.#remoteDown = true;
      this.#log.warn("remote API server unreachable", { server: this.#upstream?.url.origin, error: error.message });
    }
    return {
      code: 502,
      reason: "BadGateway",
      message: `service account import ${this.name}: error reaching ${this.#upstream?.url.origin ?? "the remote API server"}: ${error.message}`,
    };
  }

  #remoteAnswered(): void {
    if (this.#remoteDown) {
      this.#remoteDown = false;
      this.#log.info("remote API server reachable again", { server: this.#upstream?.url.origin });
    }
  }

  /**
   * New connections: no Nagle (a request body's last chunk must not wait for the ACK of the one
   * before), and a failure if the TCP and TLS handshakes take too long (a black-holed remote).
   */
  #connectTimeout(up: ReturnType<typeof httpsRequest>): void {
    up.once("socket", (socket: Socket) => {
      if (!socket.connecting) return;
      socket.setNoDelay(true);
      const timer = setTimeout(() => up.destroy(new Error(`no connection after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
      const clear = () => clearTimeout(timer);
      socket.once("secureConnect", clear);
      socket.once("close", clear);
    });
  }

  /**
   * A request Node's parser refused (CL with TE, a bad length, a bad header…): answer 400 (431 for
   * headers too large) with a Status when no response is under way on that connection, and close.
   */
  #onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (socket.writable && (this.#inFlight.get(socket) ?? 0) === 0 && error.code !== "ECONNRESET") {
      const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
      const reply: StatusReply = tooLarge
        ? { code: 431, reason: "RequestHeaderFieldsTooLarge", message: "the request headers are too large" }
        : { code: 400, reason: "BadRequest", message: `the request is not valid HTTP/1.1: ${error.message.replace(/^Parse Error: /, "")}` };
      socket.end(rawStatusResponse(reply));
      return;
    }
    socket.destroy();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const connection = req.socket;
    this.#inFlight.set(connection, (this.#inFlight.get(connection) ?? 0) + 1);
    res.once("close", () => this.#inFlight.set(connection, (this.#inFlight.get(connection) ?? 1) - 1));
    if (this.#draining) {
      // The connection was open before the drain began; its next request is not one to start now.
      res.shouldKeepAlive = false;
      sendStatus(res, { code: 503, reason: "ServiceUnavailable", message: `the sidecar is stopping: import ${this.name}'s proxy takes no new requests` });
      this.#record(503, started);
      req.resume();
      return;
    }
    this.#active.add(res);
    res.once("close", () => this.#active.delete(res));
    const admitted = this.#admit(req, false);
    if ("refuse" in admitted) {
      sendStatus(res, admitted.refuse);
      this.#record(admitted.refuse.code, started);
      req.resume();
      return;
    }
    const { upstream, path, framing } = admitted;
    // No body: nothing of the app's follows the headers upstream. A body-less idempotent request
    // can be sent again if a pooled connection turns out dead.
    const bodyless = framing.kind === "none";
    const retryable = bodyless && RETRYABLE.has(req.method ?? "");
    if (bodyless) req.resume();

    const send = (attempt: number) => {
      let up: ReturnType<typeof httpsRequest>;
      try {
        up = httpsRequest(this.#options(upstream, req, path, framing, false));
      } catch (error) {
        // A header Node's parser took but its client will not send (ERR_INVALID_CHAR…).
        sendStatus(res, { code: 400, reason: "BadRequest", message: `the request is not accepted: ${(error as Error).message}` });
        this.#record(400, started);
        req.resume();
        return;
      }
      this.#connectTimeout(up);
      let answered = false;
      up.on("response", (upRes) => {
        answered = true;
        this.#remoteAnswered();
        const code = upRes.statusCode ?? 502;
        res.writeHead(code, upRes.statusMessage, filterResponseHeaders(upRes.rawHeaders));
        // Streamed responses (watch) have no length: send the headers now, not with the first event.
        if (upRes.headers["content-length"] === undefined) res.flushHeaders();
        this.#record(code, started);
        upRes.on("error", () => res.destroy());
        upRes.pipe(res);
      });
      up.on("error", (error: NodeJS.ErrnoException) => {
        if (answered || res.destroyed) {
          res.destroy();
          return;
        }
        if (retryable && attempt === 0 && up.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE")) {
          send(1);
          return;
        }
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const reply = this.#remoteFailed(error);
        sendStatus(res, reply);
        this.#record(reply.code, started);
      });
      res.once("close", () => {
        if (!res.writableFinished) up.destroy();
      });
      if (bodyless) up.end();
      else req.pipe(up);
    };
    send(0);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    socket.on("error", () => socket.destroy());
    const admitted = this.#admit(req, true);
    if ("refuse" in admitted) {
      socket.end(rawStatusResponse(admitted.refuse));
      this.#record(admitted.refuse.code, started);
      return;
    }
    let up: ReturnType<typeof httpsRequest>;
    try {
      up = httpsRequest(this.#options(admitted.upstream, req, admitted.path, admitted.framing, true));
    } catch (error) {
      socket.end(rawStatusResponse({ code: 400, reason: "BadRequest", message: `the request is not accepted: ${(error as Error).message}` }));
      this.#record(400, started);
      return;
    }
    this.#connectTimeout(up);
    up.on("upgrade", (upRes, upSocket, upHead) => {
      this.#remoteAnswered();
      this.#record(upRes.statusCode ?? 101, started);
      const headers = filterResponseHeaders(upRes.rawHeaders, { upgrade: true });
      let text = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`;
      for (let i = 0; i + 1 < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
      socket.write(`${text}\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      this.#tunnels.add(socket);
      this.#tunnels.add(upSocket);
      const end = () => {
        socket.destroy();
        upSocket.destroy();
        this.#tunnels.delete(socket);
        this.#tunnels.delete(upSocket);
      };
      upSocket.on("error", end).on("close", end);
      socket.on("error", end).on("close", end);
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });
    // The remote refused the upgrade (403, 404, 400…): relay its answer and close.
    up.on("response", (upRes) => {
      this.#remoteAnswered();
      this.#record(upRes.statusCode ?? 502, started);
      const chunks: Buffer[] = [];
      let size = 0;
      upRes.on("data", (c: Buffer) => {
        size += c.length;
        if (size <= 1 << 20) chunks.push(c);
      });
      upRes.on("end", () => {
        const body = Buffer.concat(chunks);
        const headers = filterResponseHeaders(upRes.rawHeaders);
        let text = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`;
        for (let i = 0; i + 1 < headers.length; i += 2) {
          if (/^content-length$/i.test(headers[i] as string)) continue;
          text += `${headers[i]}: ${headers[i + 1]}\r\n`;
        }
        socket.end(Buffer.concat([Buffer.from(`${text}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
      });
      upRes.on("error", () => socket.destroy());
    });
    up.on("error", (error) => {
      // The app went away first: our own abort, not an outage of the remote.
      if (socket.destroyed) return;
      const reply = this.#remoteFailed(error);
      if (socket.writable) socket.end(rawStatusResponse(reply));
      this.#record(reply.code, started);
    });
    socket.once("close", () => up.destroy());
    up.end();
  }
}

function sendStatus(res: ServerResponse, reply: StatusReply): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(reply.code, STATUS_HEADERS);
  res.end(statusBody(reply));
}

/** Stops an agent from pooling: its idle sockets close now, busy ones (a watch) when they finish. */
function retire(agent: Agent): void {
  // Node's Agent checks this field when a socket is freed (not in @types/node).
  (agent as Agent & { keepAlive: boolean }).keepAlive = false;
  for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
}
